import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { KeyPair } from '../../src/crypto/keys.ts';
import { resolveBundle } from '../../src/crypto/keys.ts';
import { T0, rejectsWith, throwsWith } from './helpers.ts';

// Remembers what readFile handed out (so a test can check it was wiped), and lets one test make
// fsync fail after the temporary key file was written; everything else passes through.
const fault = vi.hoisted(() => ({ failSync: false, reads: [] as Uint8Array[] }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...orig,
    readFile: async (...args: Parameters<typeof orig.readFile>) => {
      const out = await orig.readFile(...args);
      if (out instanceof Uint8Array) fault.reads.push(out);
      return out;
    },
    open: async (...args: Parameters<typeof orig.open>) => {
      const handle = await orig.open(...args);
      if (fault.failSync)
        handle.sync = async () => {
          throw new Error('EIO: simulated fsync failure');
        };
      return handle;
    },
  };
});

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
afterEach(() => {
  fault.failSync = false;
  vi.restoreAllMocks();
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

describe('secret key material is wiped from memory and never left on disk', () => {
  it('save() wipes the secret bytes it wrote (plain and encrypted)', async () => {
    const spy = vi.spyOn(KeyPair.prototype, 'toSecretBytes');
    await kp.save(join(dir, 'plain.key'));
    await kp.save(join(dir, 'sealed.key'), { passphrase: 'pw', scryptLogN: 14 });
    expect(spy).toHaveBeenCalledTimes(2);
    for (const r of spy.mock.results) expect((r.value as Uint8Array).every((b) => b === 0)).toBe(true);
  });

  it('load() wipes the secret bytes it read, and the loaded key still signs as before', async () => {
    await kp.save(join(dir, 'plain2.key'));
    await kp.save(join(dir, 'sealed2.key'), { passphrase: 'pw', scryptLogN: 14 });
    const spy = vi.spyOn(KeyPair, 'fromSecretBytes');
    fault.reads.length = 0;
    const a = await KeyPair.load(join(dir, 'plain2.key'));
    // The buffer readFile returned for the plain file held the secret too: no copy may survive.
    expect(fault.reads).toHaveLength(1);
    expect((fault.reads[0] as Uint8Array).every((x) => x === 0)).toBe(true);
    const b = await KeyPair.load(join(dir, 'sealed2.key'), { passphrase: 'pw' });
    expect(a.kid).toBe(kp.kid);
    expect(b.kid).toBe(kp.kid);
    expect(a.publicKeys()).toEqual(kp.publicKeys());
    expect(spy).toHaveBeenCalledTimes(2);
    for (const [bytes] of spy.mock.calls) expect((bytes as Uint8Array).every((x) => x === 0)).toBe(true);
  });

  it('a plain key file refused for being loaded with a passphrase is wiped from memory too', async () => {
    await kp.save(join(dir, 'plain3.key'));
    fault.reads.length = 0;
    await expect(KeyPair.load(join(dir, 'plain3.key'), { passphrase: 'pw' })).rejects.toMatchObject({ code: 'KEY_FILE_NOT_ENCRYPTED' });
    expect(fault.reads).toHaveLength(1);
    expect((fault.reads[0] as Uint8Array).every((x) => x === 0)).toBe(true);
  });

  it('a failed write leaves no temporary copy of the secret beside the key file', async () => {
    const sub = await mkdtemp(join(dir, 'fail-'));
    fault.failSync = true;
    await expect(kp.save(join(sub, 'secret.key'))).rejects.toThrow(/EIO/);
    fault.failSync = false;
    expect(await readdir(sub)).toEqual([]);
  });
});
