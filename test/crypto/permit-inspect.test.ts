import { beforeAll, describe, expect, it } from 'vitest';
import { KeyPair } from '../../src/crypto/keys.ts';
import { inspectPermitToken } from '../../src/crypto/permit-inspect.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { T0, b64, flipBit, unb64 } from './helpers.ts';

const request = (n: number) => ({
  principalId: 'alice',
  principalKind: 'agent' as const,
  action: 'fs.read_file',
  args: { n },
  evaluationId: `e${n}`,
  issuedAt: T0,
  expiresAt: T0 + 30_000,
  audience: 'fs',
  sessionId: 's1',
});

let kp: KeyPair;

beforeAll(() => {
  kp = KeyPair.generate({ now: T0 });
});

describe('inspectPermitToken', () => {
  it('reads the claims and the signature parts of a single-signed token', async () => {
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'pq', pool: false });
    const { token, id } = await signer.issue(request(1));
    const seen = inspectPermitToken(token);
    expect(seen.claims).toMatchObject({
      kid: kp.kid,
      sub: 'alice',
      knd: 'agent',
      act: 'fs.read_file',
      aud: 'fs',
      sid: 's1',
      eid: 'e1',
      jti: id,
      iat: T0,
      exp: T0 + 30_000,
    });
    expect(seen.signature).toEqual({ mode: 'pq', kid: kp.kid, envelope: token.split('.')[2] });
    expect(seen.batch).toBeUndefined();
    await signer.close();
  });

  it("reads a batch token's place in its batch", async () => {
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool: false, batch: { maxSize: 3, maxDelayMs: 60_000 } });
    const issued = await Promise.all([1, 2, 3].map((n) => signer.issue(request(n))));
    issued.forEach(({ token }, i) => {
      const seen = inspectPermitToken(token);
      expect(seen.signature.mode).toBe('hybrid');
      expect(seen.batch).toMatchObject({ size: 3, index: i, proof: token.split('.')[2] });
      expect(seen.claims.eid).toBe(`e${i + 1}`);
    });
    await signer.close();
  });

  it('verifies nothing: a token whose signature is broken still inspects, and the verifier refuses it', async () => {
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'pq', pool: false });
    const { token } = await signer.issue(request(1));
    const [prefix, claims, sig] = token.split('.') as [string, string, string];
    const broken = `${prefix}.${claims}.${b64(flipBit(unb64(sig), 100))}`;
    expect(inspectPermitToken(broken).claims.sub).toBe('alice');
    await expect(new PermitVerifier({ keys: kp.publicKeys(), mode: 'pq', clock: () => T0 }).verify(broken)).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    await signer.close();
  });

  it('refuses a malformed token with BAD_FORMAT', () => {
    for (const bad of ['', 'kv1', 'kv2.e30.AA', 'kv1.e30.AA', 'kv1.!!.AA', 42 as never]) {
      expect(() => inspectPermitToken(bad)).toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
    }
  });
});
