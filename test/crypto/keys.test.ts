import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyPair } from '../../src/crypto/keys.ts';
import { resolveBundle } from '../../src/crypto/keys.ts';
import { T0, rejectsWith, throwsWith } from './helpers.ts';

let kp: KeyPair;
let dir: string;
const FAST = { scryptLogN: 14 }; // the cost is stored in the file; tests keep it low

beforeAll(async () => {
  kp = KeyPair.generate({ now: T0, expiresInMs: 86_400_000 });
  dir = await mkdtemp(join(tmpdir(), 'kavach-keys-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('key pairs', () => {
  it('publish a JSON-safe bundle of four public keys with a kid derived from them', () => {
    const b = kp.publicKeys();
    expect(JSON.parse(JSON.stringify(b))).toEqual(b);
    expect(b).toMatchObject({ v: 1, kid: kp.kid, created: T0, expires: T0 + 86_400_000 });
    expect(Buffer.from(b.mldsa65, 'base64url')).toHaveLength(1952);
    expect(Buffer.from(b.ed25519, 'base64url')).toHaveLength(32);
    expect(Buffer.from(b.mlkem768, 'base64url')).toHaveLength(1184);
    expect(Buffer.from(b.x25519, 'base64url')).toHaveLength(32);
    expect(resolveBundle(b).bundle.kid).toBe(kp.kid);
  });

  it('round-trip through secret bytes to the same keys and kid', () => {
    const again = KeyPair.fromSecretBytes(kp.toSecretBytes());
    expect(again.kid).toBe(kp.kid);
    expect(again.publicKeys()).toEqual(kp.publicKeys());
  });

  it('differ from one generation to the next', () => {
    expect(KeyPair.generate().kid).not.toBe(kp.kid);
  });

  it('refuse secret bytes that are truncated, flipped, of another version or not a key', () => {
    const good = kp.toSecretBytes();
    const flipped = good.slice();
    flipped[100] = (flipped[100] as number) ^ 1;
    const version = good.slice();
    version[4] = 2;
    for (const bad of [good.slice(0, 100), flipped, version, new Uint8Array(good.length), new Uint8Array(0)]) {
      throwsWith(() => KeyPair.fromSecretBytes(bad), 'KEY_FILE_CORRUPT');
    }
  });

  it('reject a bundle whose kid does not match its keys, or whose keys have the wrong size', () => {
    const other = KeyPair.generate().publicKeys();
    expect(() => resolveBundle({ ...kp.publicKeys(), ed25519: other.ed25519 })).toThrow(/kid/);
    expect(() => resolveBundle({ ...kp.publicKeys(), mldsa65: other.mldsa65.slice(0, 100) })).toThrow(/1952 bytes/);
    expect(() => resolveBundle({ ...kp.publicKeys(), extra: 1 })).toThrow();
  });
});

describe('key files', () => {
  it('are written with mode 0600 and load back to the same key', async () => {
    const path = join(dir, 'plain.key');
    await kp.save(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await KeyPair.load(path)).kid).toBe(kp.kid);
  });

  it('with a passphrase are encrypted at rest, 0600, and need the passphrase', async () => {
    const path = join(dir, 'enc.key');
    await kp.save(path, { passphrase: 'correct horse', ...FAST });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const raw = await readFile(path);
    expect(raw.subarray(0, 4).toString()).toBe('KVSE');
    expect(raw.includes(Buffer.from(kp.toSecretBytes().subarray(22, 54)))).toBe(false);
    expect((await KeyPair.load(path, { passphrase: 'correct horse' })).kid).toBe(kp.kid);
    await rejectsWith(KeyPair.load(path), 'PASSPHRASE_REQUIRED');
  });

  it('refuse a wrong passphrase with WRONG_PASSPHRASE', async () => {
    const path = join(dir, 'wrong.key');
    await kp.save(path, { passphrase: 'right', ...FAST });
    await rejectsWith(KeyPair.load(path, { passphrase: 'wrong' }), 'WRONG_PASSPHRASE');
  });

  it('tell a damaged file (KEY_FILE_CORRUPT) from a wrong passphrase', async () => {
    const path = join(dir, 'damaged.key');
    await kp.save(path, { passphrase: 'pw', ...FAST });
    const bytes = await readFile(path);
    for (const offset of [5, 30, 60, bytes.length - 40, bytes.length - 1]) {
      const copy = Buffer.from(bytes);
      copy[offset] = (copy[offset] as number) ^ 0x10;
      await writeFile(path, copy, { mode: 0o600 });
      await rejectsWith(KeyPair.load(path, { passphrase: 'pw' }), 'KEY_FILE_CORRUPT');
    }
    await writeFile(path, bytes.subarray(0, 50), { mode: 0o600 });
    await rejectsWith(KeyPair.load(path, { passphrase: 'pw' }), 'KEY_FILE_CORRUPT');
  });

  it('refuse a damaged plain file, a foreign file, and an unencrypted file when a passphrase is given', async () => {
    const path = join(dir, 'plain2.key');
    await kp.save(path);
    const bytes = await readFile(path);
    bytes[120] = (bytes[120] as number) ^ 1;
    await writeFile(path, bytes, { mode: 0o600 });
    await rejectsWith(KeyPair.load(path), 'KEY_FILE_CORRUPT');
    await writeFile(path, '-----BEGIN PRIVATE KEY-----\n', { mode: 0o600 });
    await rejectsWith(KeyPair.load(path), 'KEY_FILE_CORRUPT');
    await kp.save(path);
    await rejectsWith(KeyPair.load(path, { passphrase: 'pw' }), 'KEY_FILE_NOT_ENCRYPTED');
  });

  it('refuse to load a key file that group or others can read', async () => {
    const path = join(dir, 'loose.key');
    await kp.save(path);
    await chmod(path, 0o644);
    await rejectsWith(KeyPair.load(path), 'KEY_FILE_PERMISSIONS');
  });

  it('refuse a missing file with KEY_FILE_UNREADABLE', async () => {
    await rejectsWith(KeyPair.load(join(dir, 'nope.key')), 'KEY_FILE_UNREADABLE');
  });

  it('refuse an empty passphrase', async () => {
    await expect(kp.save(join(dir, 'empty.key'), { passphrase: '' })).rejects.toThrow(/passphrase/);
  });
});
