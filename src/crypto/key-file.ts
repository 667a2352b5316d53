/**
 * Secret key files. Plain files hold the secret bytes as they are; with a passphrase the bytes are
 * sealed with XChaCha20-Poly1305 under a scrypt-derived key. A checksum outside the AEAD tells a
 * damaged file from a wrong passphrase. Files are written 0600 and refused when group/world can read them.
 */
import { createHash, randomBytes, scrypt as scryptCb } from 'node:crypto';
import { chmod, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { equalBytes, utf8 } from './encoding.ts';
import { KeyFileError } from './errors.ts';

export interface KeyFileOptions {
  passphrase?: string;
  /** scrypt cost as log2(N) when writing (default 17, i.e. 128 MiB with r = 8). Min 14. */
  scryptLogN?: number;
}

// "KVSE" | 0x01 | logN | r | p | salt 16 | nonce 24 | ciphertext+tag | SHA-256(all before)[0..16]
const ENC_MAGIC = utf8('KVSE');
const PLAIN_MAGIC = utf8('KVSK');
const HEADER = 4 + 4 + 16 + 24;
const CHECKSUM = 16;
const R = 8;
const P = 1;

function scrypt(passphrase: string, salt: Uint8Array, logN: number, r: number, p: number): Promise<Uint8Array> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) => {
    scryptCb(utf8(passphrase.normalize('NFC')), salt, 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    );
  });
}

function sum(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest().subarray(0, CHECKSUM));
}

function checkPassphrase(passphrase: string): void {
  if (typeof passphrase !== 'string' || passphrase.length === 0) throw new TypeError('passphrase must be a non-empty string');
}

export async function encryptSecret(secret: Uint8Array, passphrase: string, logN = 17): Promise<Uint8Array> {
  checkPassphrase(passphrase);
  if (!Number.isInteger(logN) || logN < 14 || logN > 20) throw new TypeError('scryptLogN must be an integer in 14..20');
  const salt = new Uint8Array(randomBytes(16));
  const nonce = new Uint8Array(randomBytes(24));
  const header = new Uint8Array(HEADER);
  header.set(ENC_MAGIC, 0);
  header.set([1, logN, R, P], 4);
  header.set(salt, 8);
  header.set(nonce, 24);
  const key = await scrypt(passphrase, salt, logN, R, P);
  let sealed: Uint8Array;
  try {
    sealed = xchacha20poly1305(key, nonce, header).encrypt(secret);
  } finally {
    key.fill(0);
  }
  const body = new Uint8Array(HEADER + sealed.length + CHECKSUM);
  body.set(header, 0);
  body.set(sealed, HEADER);
  body.set(sum(body.subarray(0, HEADER + sealed.length)), HEADER + sealed.length);
  return body;
}

export async function decryptSecret(file: Uint8Array, passphrase: string): Promise<Uint8Array> {
  checkPassphrase(passphrase);
  if (file.length < HEADER + 16 + CHECKSUM || !equalBytes(file.subarray(0, 4), ENC_MAGIC)) {
    throw new KeyFileError('KEY_FILE_CORRUPT', 'not an encrypted Kavach key file');
  }
  const end = file.length - CHECKSUM;
  if (!equalBytes(sum(file.subarray(0, end)), file.subarray(end))) {
    throw new KeyFileError('KEY_FILE_CORRUPT', 'the key file is damaged (checksum mismatch)');
  }
  const version = file[4] as number;
  const logN = file[5] as number;
  const r = file[6] as number;
  const p = file[7] as number;
  // Bound the work factor an attacker-supplied file can demand.
  if (version !== 1 || logN < 14 || logN > 20 || r !== R || p !== P) {
    throw new KeyFileError('KEY_FILE_CORRUPT', 'unsupported key file version or parameters');
  }
  const key = await scrypt(passphrase, file.subarray(8, 24), logN, r, p);
  try {
    return xchacha20poly1305(key, file.subarray(24, 48), file.subarray(0, HEADER)).decrypt(file.subarray(HEADER, end));
  } catch {
    throw new KeyFileError('WRONG_PASSPHRASE', 'wrong passphrase for this key file');
  } finally {
    key.fill(0);
  }
}

export async function writeKeyFile(path: string, secret: Uint8Array, opts: KeyFileOptions): Promise<void> {
  const body = opts.passphrase !== undefined ? await encryptSecret(secret, opts.passphrase, opts.scryptLogN) : secret;
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  // Created 0600 from the start (never briefly readable), then renamed into place atomically.
  const handle = await open(tmp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (err) {
    // A failed write (ENOSPC, EIO) must not leave a whole or partial secret beside the key file.
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

export async function readKeyFile(path: string, opts: KeyFileOptions): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    const info = await stat(path);
    if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
      throw new KeyFileError(
        'KEY_FILE_PERMISSIONS',
        `${path} is readable by group or others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 on it`,
      );
    }
    // A view, not a copy: the caller wipes these bytes, and a copy would leave the original behind.
    const buf = await readFile(path);
    bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    if (err instanceof KeyFileError) throw err;
    throw new KeyFileError('KEY_FILE_UNREADABLE', `cannot read key file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const head = bytes.subarray(0, 4);
  if (equalBytes(head, ENC_MAGIC)) {
    if (opts.passphrase === undefined) throw new KeyFileError('PASSPHRASE_REQUIRED', `${path} is encrypted: a passphrase is required`);
    return decryptSecret(bytes, opts.passphrase);
  }
  if (equalBytes(head, PLAIN_MAGIC)) {
    if (opts.passphrase !== undefined) {
      bytes.fill(0); // a plain secret nobody will use
      throw new KeyFileError('KEY_FILE_NOT_ENCRYPTED', `${path} is not encrypted but a passphrase was given`);
    }
    return bytes;
  }
  throw new KeyFileError('KEY_FILE_CORRUPT', `${path} is not a Kavach key file`);
}
