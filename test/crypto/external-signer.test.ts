import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import { KeyPair, type PublicKeyBundle } from '../../src/crypto/keys.ts';
import { PermitSigner, type ExternalPermitSignerOptions } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { SigningPool } from '../../src/crypto/signing-pool.ts';
import { T0 } from './helpers.ts';

const POLICY = { policies: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read*' }] }] };
const CTX = { principalId: 'alice', principalKind: 'agent' as const, actionName: 'fs.read_file', params: { path: '/a' }, audience: 'fs' };

/** Raw keys made by noble (as an HSM would hold them) and the bundle a verifier gets. */
interface Hsm {
  bundle: PublicKeyBundle;
  signMlDsa: (message: Uint8Array, context: Uint8Array) => Uint8Array;
  signEd25519: (message: Uint8Array) => Uint8Array;
}

function makeHsm(opts: { createdAt?: number; expiresAt?: number } = {}): Hsm {
  const mlDsa = ml_dsa65.keygen();
  const edSeed = new Uint8Array(randomBytes(32));
  const bundle = KeyPair.fromRawKeys({
    mlDsaSecretKey: mlDsa.secretKey,
    mlDsaPublicKey: mlDsa.publicKey,
    ed25519SecretKey: edSeed,
    createdAt: T0,
    ...opts,
  }).publicKeys();
  return {
    bundle,
    signMlDsa: (message, context) => ml_dsa65.sign(message, mlDsa.secretKey, { context }),
    signEd25519: (message) => ed25519.sign(message, edSeed),
  };
}

let hsm: Hsm;
let other: Hsm;

beforeAll(() => {
  hsm = makeHsm();
  other = makeHsm();
});

function signer(overrides: Partial<ExternalPermitSignerOptions> = {}): PermitSigner {
  return PermitSigner.fromExternal({
    mode: 'hybrid',
    publicKeys: hsm.bundle,
    signMlDsa: hsm.signMlDsa,
    signEd25519: hsm.signEd25519,
    ...overrides,
  });
}

async function evaluateWith(s: PermitSigner, now = T0) {
  const gate = Gate.fromDict(POLICY, { signer: s, drift: false, clock: () => now });
  try {
    return await gate.evaluate(CTX);
  } finally {
    await gate.close();
    await s.close();
  }
}

describe('PermitSigner.fromExternal', () => {
  for (const mode of ['hybrid', 'pq'] as const) {
    it(`signs ${mode} permits the verifier accepts, with async external functions`, async () => {
      const s = signer({
        mode,
        signMlDsa: async (m, c) => hsm.signMlDsa(m, c),
        ...(mode === 'hybrid' ? { signEd25519: async (m: Uint8Array) => hsm.signEd25519(m) } : { signEd25519: undefined }),
      });
      expect(s.external).toBe(true);
      expect(s.pool).toBeUndefined();
      expect(s.kid).toBe(hsm.bundle.kid);
      const verdict = await evaluateWith(s);
      expect(verdict.kind).toBe('permit');
      const tool = new PermitVerifier({ keys: hsm.bundle, mode, audience: 'fs', replay: new InMemoryReplayStore(), clock: () => T0 });
      await expect(
        tool.verify((verdict as { permit: string }).permit, { action: 'fs.read_file', args: { path: '/a' } }),
      ).resolves.toMatchObject({ sub: 'alice' });
    });
  }

  describe('refuses SIGNING_FAILED through Gate.evaluate when the external signer', () => {
    const cases: Array<[string, Partial<ExternalPermitSignerOptions>, RegExp]> = [
      ['returns junk of the right length', { signMlDsa: () => new Uint8Array(randomBytes(3309)) }, /ML-DSA-65 signature does not verify/],
      ['returns junk of the wrong length', { signMlDsa: () => new Uint8Array(12) }, /ML-DSA-65 signature does not verify/],
      ['returns something other than bytes', { signMlDsa: (() => 'c2lnbmF0dXJl') as never }, /returned string, not a Uint8Array/],
      ['returns nothing', { signMlDsa: (async () => undefined) as never }, /returned undefined, not a Uint8Array/],
      ['signs ML-DSA with another key', { signMlDsa: (m, c) => other.signMlDsa(m, c) }, /ML-DSA-65 signature does not verify under key/],
      ['signs Ed25519 with another key', { signEd25519: (m) => other.signEd25519(m) }, /Ed25519 signature does not verify under key/],
      ['signs other bytes', { signMlDsa: (m, c) => hsm.signMlDsa(m.subarray(1), c) }, /ML-DSA-65 signature does not verify/],
      [
        'signs under another context string',
        { signMlDsa: (m) => hsm.signMlDsa(m, new Uint8Array(0)) },
        /ML-DSA-65 signature does not verify/,
      ],
      [
        'throws',
        {
          signMlDsa: () => {
            throw new Error('HSM session closed');
          },
        },
        /ML-DSA-65 signer failed: HSM session closed/,
      ],
      [
        'rejects',
        {
          signEd25519: async () => {
            throw new Error('token not logged in');
          },
        },
        /Ed25519 signer failed: token not logged in/,
      ],
      [
        'never answers',
        { signMlDsa: () => new Promise<Uint8Array>(() => undefined), timeoutMs: 20 },
        /ML-DSA-65 signer did not answer within 20 ms/,
      ],
    ];
    for (const [what, overrides, reason] of cases) {
      it(what, async () => {
        const verdict = await evaluateWith(signer(overrides));
        expect(verdict).toMatchObject({ kind: 'refuse', code: 'SIGNING_FAILED', evaluator: 'signer' });
        expect((verdict as { reason: string }).reason).toMatch(reason);
      });
    }

    it('signs with a key past the expiry its bundle states (KEY_EXPIRED, before any external call)', async () => {
      const expiring = makeHsm({ expiresAt: T0 + 1000 });
      let calls = 0;
      const s = PermitSigner.fromExternal({
        mode: 'pq',
        publicKeys: expiring.bundle,
        signMlDsa: (m, c) => {
          calls++;
          return expiring.signMlDsa(m, c);
        },
      });
      const verdict = await evaluateWith(s, T0 + 1000);
      expect(verdict).toMatchObject({ kind: 'refuse', code: 'SIGNING_FAILED' });
      expect((verdict as { reason: string }).reason).toMatch(/KEY_EXPIRED/);
      expect(calls).toBe(0);
    });
  });

  it('gives the external functions copies: one that scribbles on its input cannot change what the other signs', async () => {
    const s = signer({
      signMlDsa: (m, c) => {
        const sig = hsm.signMlDsa(m, c);
        m.fill(0);
        return sig;
      },
      signEd25519: (m) => {
        const sig = hsm.signEd25519(m);
        m.fill(0);
        return sig;
      },
    });
    expect((await evaluateWith(s)).kind).toBe('permit');
  });

  it('batch-signs with one external signature per batch', async () => {
    let calls = 0;
    const s = signer({
      mode: 'pq',
      signEd25519: undefined,
      signMlDsa: (m, c) => {
        calls++;
        return hsm.signMlDsa(m, c);
      },
      batch: { maxSize: 3, maxDelayMs: 60_000 },
    });
    expect(s.batched).toBe(true);
    const request = (n: number) => ({
      principalId: 'p',
      principalKind: 'agent' as const,
      action: 'fs.read_file',
      args: { n },
      evaluationId: `e${n}`,
      issuedAt: T0,
      expiresAt: T0 + 30_000,
    });
    const issued = await Promise.all([1, 2, 3].map((n) => s.issue(request(n))));
    expect(calls).toBe(1);
    const tool = new PermitVerifier({ keys: hsm.bundle, mode: 'pq', clock: () => T0 });
    for (const [i, permit] of issued.entries()) await tool.verify(permit.token, { args: { n: i + 1 } });
    await s.close();
  });

  it('close() waits for an external signature in flight', async () => {
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started: () => void = () => undefined;
    const startedP = new Promise<void>((resolve) => {
      started = resolve;
    });
    const s = signer({
      mode: 'pq',
      signEd25519: undefined,
      signMlDsa: async (m, c) => {
        started();
        await gate;
        return hsm.signMlDsa(m, c);
      },
    });
    const issuing = s.issue({
      principalId: 'p',
      principalKind: 'agent',
      action: 'a',
      args: {},
      evaluationId: 'e',
      issuedAt: T0,
      expiresAt: T0 + 1,
    });
    await startedP;
    let closed = false;
    const closing = s.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setImmediate(resolve)); // a close that did not wait would be done by now
    expect(closed).toBe(false);
    release?.();
    await closing;
    await expect(issuing).resolves.toMatchObject({ id: expect.any(String) });
    await expect(
      s.issue({ principalId: 'p', principalKind: 'agent', action: 'a', args: {}, evaluationId: 'e', issuedAt: T0, expiresAt: T0 + 1 }),
    ).rejects.toThrow(/closed/);
  });

  describe('refuses at construction', () => {
    it('a SigningPool (a worker thread cannot carry a function)', async () => {
      const pool = new SigningPool({ size: 1 });
      expect(() => signer({ pool: pool as never })).toThrow(/external signer cannot use a SigningPool/);
      await pool.close();
      expect(() => signer({ pool: false })).not.toThrow();
    });

    it('hybrid without signEd25519', () => {
      expect(() => signer({ signEd25519: undefined })).toThrow(/hybrid external signer needs signEd25519/);
    });

    it("a kid that is not the bundle's", () => {
      expect(() => signer({ kid: other.bundle.kid })).toThrow(/is not the kid of its public keys/);
    });

    it('a bundle whose kid does not match its keys', () => {
      expect(() => signer({ publicKeys: { ...hsm.bundle, ed25519: other.bundle.ed25519 } })).toThrow(/does not match its keys/);
    });

    it('a missing signMlDsa, a bad mode or timeout', () => {
      expect(() => signer({ signMlDsa: undefined as never })).toThrow(/needs signMlDsa/);
      expect(() => signer({ mode: 'classic' as never })).toThrow(/mode must be/);
      for (const timeoutMs of [0, -1, 1.5, 600_001]) expect(() => signer({ timeoutMs })).toThrow(/timeoutMs/);
    });
  });
});

describe('PermitSigner.signClaims', () => {
  it('mints a token from whole claims that the verifier accepts', async () => {
    const kp = KeyPair.generate({ now: T0 });
    const s = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool: false });
    const token = await s.signClaims({
      v: 1,
      kid: kp.kid,
      iss: 'billing-tool',
      sub: 'ops',
      knd: 'service',
      act: 'billing.refund',
      aud: 'billing',
      args: 'x'.repeat(43),
      eid: 'manual-1',
      jti: 'manual-jti-000001',
      iat: T0,
      exp: T0 + 60_000,
    });
    const tool = new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'billing', clock: () => T0 });
    await expect(tool.verify(token, { action: 'billing.refund' })).resolves.toMatchObject({
      iss: 'billing-tool',
      jti: 'manual-jti-000001',
    });
    await s.close();
  });

  it('refuses claims that a verifier would refuse, or that name another key', async () => {
    const kp = KeyPair.generate({ now: T0 });
    const s = PermitSigner.fromKeyPair(kp, { mode: 'pq', pool: false });
    const good = {
      v: 1 as const,
      kid: kp.kid,
      iss: 'i',
      sub: 's',
      knd: 'agent' as const,
      act: 'a',
      args: 'x'.repeat(43),
      eid: 'e',
      jti: 'j'.repeat(16),
      iat: T0,
      exp: T0 + 1,
    };
    await expect(s.signClaims({ ...good, exp: T0 })).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    await expect(s.signClaims({ ...good, extra: 1 } as never)).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    await expect(s.signClaims({ ...good, kid: KeyPair.generate().kid })).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    await s.close();
  });
});
