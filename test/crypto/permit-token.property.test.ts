import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashArgs } from '../../src/engine/canonical-json.ts';
import { PRINCIPAL_KINDS } from '../../src/engine/context.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { splitToken } from '../../src/crypto/permit-token.ts';
import { T0, rejectsWith } from './helpers.ts';

let kp: KeyPair;
let signer: PermitSigner;
let verifier: PermitVerifier;

beforeAll(() => {
  kp = KeyPair.generate({ now: T0 });
  signer = PermitSigner.fromKeyPair(kp, { mode: 'pq' });
  verifier = new PermitVerifier({ keys: kp.publicKeys(), mode: 'pq', clock: () => T0 });
});

const id = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s));
const args = fc.jsonValue({ maxDepth: 3 }).filter((v) => v !== null && typeof v === 'object');
const req = fc.record({
  principalId: id,
  principalKind: fc.constantFrom(...PRINCIPAL_KINDS),
  action: id,
  args,
  sessionId: fc.option(id, { nil: undefined }),
  audience: fc.option(id, { nil: undefined }),
  evaluationId: id,
  ttl: fc.integer({ min: 1, max: 86_400_000 }),
});

describe('permit token encoding (property)', () => {
  it('round-trips any request: the verifier returns exactly what was signed, bound to the args hash', async () => {
    await fc.assert(
      fc.asyncProperty(req, async ({ ttl, ...r }) => {
        const { token, id: jti } = await signer.issue({ ...r, issuedAt: T0, expiresAt: T0 + ttl });
        expect(token).toMatch(/^kv1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
        const claims = await verifier.verify(token, { action: r.action, args: r.args });
        expect(claims).toEqual({
          v: 1,
          kid: kp.kid,
          iss: 'kavach',
          sub: r.principalId,
          knd: r.principalKind,
          act: r.action,
          args: hashArgs(r.args),
          eid: r.evaluationId,
          jti,
          iat: T0,
          exp: T0 + ttl,
          ...(r.audience !== undefined ? { aud: r.audience } : {}),
          ...(r.sessionId !== undefined ? { sid: r.sessionId } : {}),
        });
        expect(splitToken(token).claims).toEqual(claims);
      }),
      { numRuns: 40 },
    );
  });

  it('rejects every single-character substitution of a token (BAD_FORMAT or BAD_SIGNATURE)', async () => {
    const { token } = await signer.issue({
      principalId: 'p',
      principalKind: 'agent',
      action: 'a.b',
      args: { x: 1 },
      evaluationId: 'e',
      issuedAt: T0,
      expiresAt: T0 + 1_000,
    });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    await fc.assert(
      fc.asyncProperty(fc.nat(token.length - 1), fc.constantFrom(...alphabet), async (at, ch) => {
        fc.pre(token[at] !== ch);
        const mutated = token.slice(0, at) + ch + token.slice(at + 1);
        await rejectsWith(verifier.verify(mutated), 'BAD_FORMAT', 'BAD_SIGNATURE');
      }),
      { numRuns: 60 },
    );
  });
});
