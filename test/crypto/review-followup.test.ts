// Follow-up review of src/crypto and the permit/keygen CLI (2026-11-26); each test failed before its fix.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as keygen } from '../../src/cli/keygen.ts';
import { run as permitCli } from '../../src/cli/permit.ts';
import { buildSignedManifest } from '../../src/crypto/key-directory.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier, type PermitExpectation } from '../../src/crypto/permit-verifier.ts';
import { SecureChannel } from '../../src/crypto/secure-channel.ts';
import type { SignatureMode } from '../../src/crypto/signatures.ts';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import { T0, rejectsWith, throwsWith } from './helpers.ts';

// Records every secret the secure channel derives (KEM and X25519 shared secrets, the ephemeral
// X25519 private key, HKDF input and output), so a test can check none is left readable. The
// wrappers pass everything through unchanged.
const secrets = vi.hoisted(() => ({ recording: false, seen: [] as Uint8Array[] }));
function keep<T extends Uint8Array>(bytes: T): T {
  if (secrets.recording) secrets.seen.push(bytes);
  return bytes;
}
vi.mock('@noble/post-quantum/ml-kem.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('@noble/post-quantum/ml-kem.js')>();
  const kem = orig.ml_kem768;
  return {
    ...orig,
    ml_kem768: {
      ...kem,
      encapsulate: (...a: Parameters<typeof kem.encapsulate>) => {
        const out = kem.encapsulate(...a);
        keep(out.sharedSecret);
        return out;
      },
      decapsulate: (...a: Parameters<typeof kem.decapsulate>) => keep(kem.decapsulate(...a)),
    },
  };
});
vi.mock('@noble/curves/ed25519.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('@noble/curves/ed25519.js')>();
  const x = orig.x25519;
  return {
    ...orig,
    x25519: {
      ...x,
      keygen: (...a: Parameters<typeof x.keygen>) => {
        const out = x.keygen(...a);
        keep(out.secretKey);
        return out;
      },
      getSharedSecret: (...a: Parameters<typeof x.getSharedSecret>) => keep(x.getSharedSecret(...a)),
    },
  };
});
vi.mock('@noble/hashes/hkdf.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('@noble/hashes/hkdf.js')>();
  return {
    ...orig,
    hkdf: (...a: Parameters<typeof orig.hkdf>) => {
      keep(a[1] as Uint8Array); // the input keying material: both shared secrets, concatenated
      return keep(orig.hkdf(...a));
    },
  };
});

let kp: KeyPair;
let dir: string;
let out: string[];

beforeAll(async () => {
  kp = KeyPair.generate({ now: T0 });
  dir = await mkdtemp(join(tmpdir(), 'kavach-followup-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  secrets.recording = false;
  secrets.seen = [];
  vi.restoreAllMocks();
});

function capture(): void {
  out = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
}

async function issue(signer: KeyPair, mode: SignatureMode, opts: { now?: number; sessionId?: string } = {}): Promise<string> {
  const now = opts.now ?? T0;
  const s = PermitSigner.fromKeyPair(signer, { mode, pool: false });
  try {
    return (await s.issue({
      principalId: 'alice', principalKind: 'agent', action: 'fs.read', args: { path: '/a' }, evaluationId: 'e-1',
      audience: 'fs', issuedAt: now, expiresAt: now + 30_000, ...(opts.sessionId !== undefined ? { sessionId: opts.sessionId } : {}),
    })).token;
  } finally {
    await s.close();
  }
}

describe('PermitVerifier: expected principal and session', () => {
  const verifier = (replay?: InMemoryReplayStore) =>
    new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'fs', clock: () => T0, ...(replay ? { replay } : {}) });
  const call: PermitExpectation = { action: 'fs.read', args: { path: '/a' } };

  it('accepts a permit for the expected principal and session', async () => {
    const token = await issue(kp, 'hybrid', { sessionId: 's-1' });
    const claims = await verifier().verify(token, { ...call, principal: 'alice', session: 's-1' });
    expect(claims).toMatchObject({ sub: 'alice', sid: 's-1' });
  });

  it('refuses a permit for another principal (WRONG_PRINCIPAL)', async () => {
    const token = await issue(kp, 'hybrid', { sessionId: 's-1' });
    await rejectsWith(verifier().verify(token, { ...call, principal: 'bob' }), 'WRONG_PRINCIPAL');
  });

  it('refuses a permit for another session, or for no session, when one is expected (WRONG_SESSION)', async () => {
    await rejectsWith(verifier().verify(await issue(kp, 'hybrid', { sessionId: 's-1' }), { ...call, session: 's-2' }), 'WRONG_SESSION');
    await rejectsWith(verifier().verify(await issue(kp, 'hybrid'), { ...call, session: 's-1' }), 'WRONG_SESSION');
  });

  it('does not use up a permit it refuses for its principal or session', async () => {
    const replay = new InMemoryReplayStore();
    const v = verifier(replay);
    const token = await issue(kp, 'hybrid', { sessionId: 's-1' });
    await rejectsWith(v.verify(token, { ...call, principal: 'mallory', session: 's-1' }), 'WRONG_PRINCIPAL');
    await rejectsWith(v.verify(token, { ...call, principal: 'alice', session: 's-9' }), 'WRONG_SESSION');
    expect((await v.verify(token, { ...call, principal: 'alice', session: 's-1' })).jti).toBeTruthy();
    await rejectsWith(v.verify(token, { ...call, principal: 'alice', session: 's-1' }), 'REPLAYED');
  });

  it('kavach permit verify checks --principal and --session', async () => {
    const keys = join(dir, 'verifier-keys.json');
    await writeFile(keys, JSON.stringify(kp.publicKeys()));
    const now = Date.now();
    const token = await issue(kp, 'hybrid', { now, sessionId: 's-1' });
    capture();
    expect(await permitCli(['verify', token, '--keys', keys, '--principal', 'alice', '--session', 's-1'])).toBe(0);
    expect(await permitCli(['verify', token, '--keys', keys, '--principal', 'bob'])).toBe(1);
    expect(await permitCli(['verify', token, '--keys', keys, '--session', 's-2'])).toBe(1);
    expect(out.slice(1).map((s) => s.trim())).toEqual(['WRONG_PRINCIPAL', 'WRONG_SESSION']);
  });
});

describe('kavach permit verify --root: the manifest has its own signature mode', () => {
  // The permit's --mode was also used to check the key manifest, so a (default, hybrid) manifest
  // could not vouch for PQ-only permits, and a PQ-only manifest not for hybrid ones.
  let root: KeyPair;
  let rootPath: string;
  beforeAll(async () => {
    root = KeyPair.generate();
    rootPath = join(dir, 'root.json');
    await writeFile(rootPath, JSON.stringify(root.publicKeys()));
  });
  async function manifest(name: string, mode: SignatureMode): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, buildSignedManifest([kp.publicKeys()], root, { version: 1, mode }));
    return path;
  }

  it('a hybrid manifest vouches for a PQ-only permit (--mode pq)', async () => {
    const m = await manifest('hybrid-manifest.json', 'hybrid');
    const token = await issue(kp, 'pq', { now: Date.now() });
    capture();
    expect(await permitCli(['verify', token, '--keys', m, '--root', rootPath, '--mode', 'pq'])).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ kid: kp.kid, sub: 'alice' });
  });

  it('a PQ-only manifest (--root-mode pq) vouches for a hybrid permit', async () => {
    const m = await manifest('pq-manifest.json', 'pq');
    const token = await issue(kp, 'hybrid', { now: Date.now() });
    capture();
    expect(await permitCli(['verify', token, '--keys', m, '--root', rootPath, '--root-mode', 'pq'])).toBe(0);
  });

  it('a PQ-only manifest is refused where a hybrid one is expected (no downgrade by the file)', async () => {
    const m = await manifest('pq-manifest-2.json', 'pq');
    const token = await issue(kp, 'pq', { now: Date.now() });
    capture();
    expect(await permitCli(['verify', token, '--keys', m, '--root', rootPath, '--mode', 'pq'])).toBe(1);
    expect(out.join('').trim()).toBe('ALG_MISMATCH');
  });

  it('says on stderr that the manifest, not the permit, was refused', async () => {
    const m = await manifest('pq-manifest-3.json', 'pq');
    const token = await issue(kp, 'pq', { now: Date.now() });
    capture();
    const err: string[] = [];
    vi.mocked(process.stderr.write).mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
    expect(await permitCli(['verify', token, '--keys', m, '--root', rootPath, '--mode', 'pq'])).toBe(1);
    expect(err.join('')).toContain(`key manifest ${m}: [ALG_MISMATCH]`);
  });
});

describe('kavach permit verify refuses flags it cannot honour', () => {
  // `--audience` with no value, or a misspelt `--audiance fs`, was ignored: the permit verified
  // with no audience check and exit 0.
  it.each([
    [['--audience']],
    [['--audience', '--action', 'fs.read']],
    [['--audiance', 'db']],
    [['--root-mode', 'pq']],
  ])('exits 2 for %j', async (extra) => {
    const keys = join(dir, 'flags-keys.json');
    await writeFile(keys, JSON.stringify(kp.publicKeys()));
    const token = await issue(kp, 'hybrid', { now: Date.now() });
    capture();
    expect(await permitCli(['verify', token, '--keys', keys, ...extra])).toBe(2);
    expect(out).toEqual([]);
  });
});

describe('kavach keygen --expires', () => {
  it('1.5ms rounds to a 2 ms expiry (no crash)', async () => {
    capture();
    const d = join(dir, 'k15');
    expect(await keygen(['--out', d, '--expires', '1.5ms'])).toBe(0);
    const pub = JSON.parse(await readFile(join(d, 'public.json'), 'utf8')) as { created: number; expires: number };
    expect(pub.expires - pub.created).toBe(2);
  });

  // `--expires` with no value (or before another flag) wrote a key that never expires, exit 0.
  it.each([[['--expires']], [['--expires', '--force']], [['--expire', '90d']]])('refuses %j rather than write a key without expiry', async (extra) => {
    capture();
    const d = join(dir, `k-${extra.join('')}`);
    expect(await keygen(['--out', d, ...extra])).toBe(2);
    await expect(readFile(join(d, 'secret.key'))).rejects.toThrow();
  });
});

describe('SecureChannel.seal with an expired own key', () => {
  // The receiver refuses a message from an expired key (KEY_EXPIRED); the sender sealed it anyway.
  it('refuses at once with KEY_EXPIRED, as the receiver would', () => {
    let now = T0;
    const short = KeyPair.generate({ now: T0, expiresInMs: 1_000 });
    const peer = KeyPair.generate({ now: T0 });
    const send = new SecureChannel(short, peer.publicKeys(), { clock: () => now });
    const recv = new SecureChannel(peer, short.publicKeys(), { clock: () => now });
    const data = new Uint8Array([1, 2, 3]);
    now = T0 + 999;
    expect(recv.open(send.seal(data, { contextId: 'c' }), { expectedContextId: 'c' })).toEqual(data);
    now = T0 + 1_000;
    throwsWith(() => send.seal(data, { contextId: 'c' }), 'KEY_EXPIRED');
  });
});

describe('SecureChannel ephemeral secrets', () => {
  it('are wiped after seal and after open (the message still opens)', () => {
    const alice = KeyPair.generate({ now: T0 });
    const bob = KeyPair.generate({ now: T0 });
    const a = new SecureChannel(alice, bob.publicKeys(), { clock: () => T0 });
    const b = new SecureChannel(bob, alice.publicKeys(), { clock: () => T0 });
    const data = new TextEncoder().encode('payload');
    secrets.recording = true;
    const sealed = a.seal(data, { contextId: 'ctx' });
    // ML-KEM ss, ephemeral X25519 secret, X25519 ss, HKDF ikm, HKDF okm
    expect(secrets.seen.length).toBe(5);
    for (const s of secrets.seen) expect(s.every((byte) => byte === 0)).toBe(true);
    secrets.seen = [];
    expect(b.open(sealed, { expectedContextId: 'ctx' })).toEqual(data);
    // ML-KEM ss, X25519 ss, HKDF ikm, HKDF okm
    expect(secrets.seen.length).toBe(4);
    for (const s of secrets.seen) expect(s.every((byte) => byte === 0)).toBe(true);
  });

  it('are wiped when a tampered message does not decrypt', () => {
    const alice = KeyPair.generate({ now: T0 });
    const bob = KeyPair.generate({ now: T0 });
    const sealed = new SecureChannel(alice, bob.publicKeys(), { clock: () => T0 }).seal(new Uint8Array(8), { contextId: 'ctx' });
    sealed[sealed.length - 1] = (sealed[sealed.length - 1] as number) ^ 1;
    secrets.recording = true;
    throwsWith(() => new SecureChannel(bob, alice.publicKeys(), { clock: () => T0 }).open(sealed, { expectedContextId: 'ctx' }), 'DECRYPT_FAILED');
    expect(secrets.seen.length).toBe(4);
    for (const s of secrets.seen) expect(s.every((byte) => byte === 0)).toBe(true);
  });
});
