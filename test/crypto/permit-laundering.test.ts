import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashArgs } from '../../src/engine/canonical-json.ts';
import type { PermitRequest } from '../../src/engine/ports.ts';
import { InMemoryReplayStore, type ReplayStore } from '../../src/engine/stores.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PublicKeyDirectory } from '../../src/crypto/key-directory.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import type { SignatureMode } from '../../src/crypto/signatures.ts';
import { PermitError } from '../../src/crypto/errors.ts';
import { utf8 } from '../../src/crypto/encoding.ts';
import type { PermitExpectation } from '../../src/crypto/permit-verifier.ts';
import {
  ENVELOPE_FLIPS,
  T0,
  b64,
  claimsBytes,
  claimsJsonWithSub,
  flipBit,
  forge,
  parts,
  rejectionOf,
  rejectsWith,
  unb64,
} from './helpers.ts';

const ARGS = { path: '/work/report.txt', opts: { encoding: 'utf8', lines: [1, 2, 3] } };
const ACTION = 'fs.read_file';
const AUD = 'fs';

let kp: KeyPair; // trusted, in the directory
let other: KeyPair; // trusted too
let stranger: KeyPair; // not in the directory
let expiring: KeyPair; // in the directory, expires at T0 + 60 s
let dir: PublicKeyDirectory;
let now = T0;

function request(over: Partial<PermitRequest> = {}): PermitRequest {
  return {
    principalId: 'alice',
    principalKind: 'agent',
    action: ACTION,
    args: ARGS,
    sessionId: 's-1',
    evaluationId: 'eval-1',
    audience: AUD,
    issuedAt: now,
    expiresAt: now + 30_000,
    ...over,
  };
}

async function issue(key: KeyPair, mode: SignatureMode = 'hybrid', over: Partial<PermitRequest> = {}): Promise<string> {
  return (await PermitSigner.fromKeyPair(key, { mode }).issue(request(over))).token;
}

function verifier(mode: SignatureMode = 'hybrid', extra: { replay?: ReplayStore; audience?: string } = {}): PermitVerifier {
  return new PermitVerifier({ keys: dir, mode, audience: AUD, clock: () => now, ...extra });
}

const expectCall = { action: ACTION, args: ARGS };

let token: string; // a good hybrid permit by kp
let token2: string; // another good hybrid permit by kp, different action
let pqToken: string;

beforeAll(async () => {
  kp = KeyPair.generate({ now: T0 });
  other = KeyPair.generate({ now: T0 });
  stranger = KeyPair.generate({ now: T0 });
  expiring = KeyPair.generate({ now: T0, expiresInMs: 60_000 });
  dir = PublicKeyDirectory.inMemory([kp.publicKeys(), other.publicKeys(), expiring.publicKeys()]);
  token = await issue(kp);
  token2 = await issue(kp, 'hybrid', { action: 'fs.write_file', evaluationId: 'eval-2' });
  pqToken = await issue(kp, 'pq');
});

function withClaims(tok: string, change: (c: Record<string, unknown>) => void): string {
  const { claims, sigB64 } = parts(tok);
  change(claims);
  return `kv1.${b64(claimsBytes(claims))}.${sigB64}`;
}

function withSig(tok: string, change: (sig: Uint8Array) => Uint8Array): string {
  const { claimsB64, sigB64 } = parts(tok);
  return `kv1.${claimsB64}.${b64(change(unb64(sigB64)))}`;
}

describe('a permit cannot be laundered', () => {
  it('control: the untouched permit verifies, bound to action, args and audience', async () => {
    now = T0;
    const claims = await verifier().verify(token, expectCall);
    expect(claims).toMatchObject({
      v: 1,
      kid: kp.kid,
      sub: 'alice',
      knd: 'agent',
      act: ACTION,
      aud: AUD,
      sid: 's-1',
      eid: 'eval-1',
      args: hashArgs(ARGS),
      iat: T0,
      exp: T0 + 30_000,
    });
  });

  describe('tampered claims → BAD_SIGNATURE', () => {
    const edits: [string, (c: Record<string, unknown>) => void][] = [
      [
        'action renamed',
        (c) => {
          c.act = 'fs.write_file';
        },
      ],
      [
        'principal swapped',
        (c) => {
          c.sub = 'mallory';
        },
      ],
      [
        'principal kind raised',
        (c) => {
          c.knd = 'service';
        },
      ],
      [
        'expiry extended',
        (c) => {
          c.exp = (c.exp as number) + 3_600_000;
        },
      ],
      [
        'args hash replaced',
        (c) => {
          c.args = hashArgs({ path: '/etc/shadow' });
        },
      ],
      [
        'audience moved',
        (c) => {
          c.aud = 'payments';
        },
      ],
      [
        'session dropped',
        (c) => {
          delete c.sid;
        },
      ],
      [
        'jti changed (replay evasion)',
        (c) => {
          c.jti = 'AAAAAAAAAAAAAAAAAAAAAA';
        },
      ],
    ];
    it.each(edits)('%s', async (_name, edit) => {
      now = T0;
      await rejectsWith(verifier().verify(withClaims(token, edit), expectCall), 'BAD_SIGNATURE');
    });
  });

  it('bit flips anywhere in the claims bytes never verify (BAD_FORMAT or BAD_SIGNATURE)', async () => {
    now = T0;
    const { claimsB64, sigB64 } = parts(token);
    const bytes = unb64(claimsB64);
    const v = verifier();
    await fc.assert(
      fc.asyncProperty(fc.nat(bytes.length - 1), fc.nat(7), async (offset, bit) => {
        await rejectsWith(v.verify(`kv1.${b64(flipBit(bytes, offset, bit))}.${sigB64}`, expectCall), 'BAD_FORMAT', 'BAD_SIGNATURE');
      }),
      { numRuns: 40 },
    );
    for (const offset of [0, 1, bytes.length - 1]) {
      await rejectsWith(v.verify(`kv1.${b64(flipBit(bytes, offset))}.${sigB64}`, expectCall), 'BAD_FORMAT');
    }
  });

  describe('tampered signature envelope', () => {
    it.each(ENVELOPE_FLIPS)('bit flip in the %s (offset %i) → %s', async (_n, offset, code) => {
      now = T0;
      await rejectsWith(
        verifier().verify(
          withSig(token, (s) => flipBit(s, offset, 1)),
          expectCall,
        ),
        code,
      );
    });

    it('an all-zero signature → BAD_SIGNATURE', async () => {
      await rejectsWith(
        verifier().verify(
          withSig(token, (s) => {
            s.fill(0, 18);
            return s;
          }),
          expectCall,
        ),
        'BAD_SIGNATURE',
      );
    });

    it('random signature bytes behind a valid header → BAD_SIGNATURE', async () => {
      await rejectsWith(
        verifier().verify(
          withSig(token, (s) => {
            s.set(crypto.getRandomValues(new Uint8Array(s.length - 18)), 18);
            return s;
          }),
          expectCall,
        ),
        'BAD_SIGNATURE',
      );
    });

    it('an empty signature part → BAD_FORMAT', async () => {
      await rejectsWith(verifier().verify(`kv1.${parts(token).claimsB64}.`, expectCall), 'BAD_FORMAT');
    });
  });

  describe('truncation and extension → BAD_FORMAT', () => {
    it.each([
      ['last character dropped', (t: string) => t.slice(0, -1)],
      ['signature cut in half', (t: string) => t.slice(0, t.lastIndexOf('.') + 2000)],
      ['signature part missing', (t: string) => t.slice(0, t.lastIndexOf('.'))],
      [
        'claims cut short',
        (t: string) => {
          const p = t.split('.');
          return `kv1.${p[1]!.slice(0, 40)}.${p[2]}`;
        },
      ],
      ['a fourth part appended', (t: string) => `${t}.AAAA`],
      ['bytes appended to the signature', (t: string) => `${t}AAAA`],
      ['padding appended', (t: string) => `${t}==`],
      ['a character outside base64url', (t: string) => `${t.slice(0, 10)}+${t.slice(11)}`],
      ['wrong prefix', (t: string) => `kv2${t.slice(3)}`],
      ['oversized', (t: string) => `${t}${'A'.repeat(20_000)}`],
      ['empty', () => ''],
    ])('%s', async (_n, mangle) => {
      now = T0;
      await rejectsWith(verifier().verify(mangle(token), expectCall), 'BAD_FORMAT');
    });
  });

  it('the signature of another permit grafted on → BAD_SIGNATURE', async () => {
    now = T0;
    const grafted = `kv1.${parts(token2).claimsB64}.${parts(token).sigB64}`;
    await rejectsWith(verifier().verify(grafted, { action: 'fs.write_file', args: ARGS }), 'BAD_SIGNATURE');
  });

  it('the claims of another permit grafted on → BAD_SIGNATURE', async () => {
    now = T0;
    const grafted = `kv1.${parts(token).claimsB64}.${parts(token2).sigB64}`;
    await rejectsWith(verifier().verify(grafted, expectCall), 'BAD_SIGNATURE');
  });

  describe('downgrade and upgrade', () => {
    it('a hybrid verifier refuses a PQ-only permit → ALG_MISMATCH', async () => {
      await rejectsWith(verifier('hybrid').verify(pqToken, expectCall), 'ALG_MISMATCH');
    });
    it('a PQ-only verifier refuses a hybrid permit → ALG_MISMATCH', async () => {
      await rejectsWith(verifier('pq').verify(token, expectCall), 'ALG_MISMATCH');
    });
    it('stripping the Ed25519 half and relabelling as PQ-only does not make a valid PQ permit → BAD_SIGNATURE', async () => {
      const stripped = withSig(token, (s) => {
        const out = s.slice(0, s.length - 64);
        out[1] = 0x01;
        return out;
      });
      await rejectsWith(verifier('pq').verify(stripped, expectCall), 'BAD_SIGNATURE');
      await rejectsWith(verifier('hybrid').verify(stripped, expectCall), 'ALG_MISMATCH');
    });
    it('a PQ-only permit relabelled hybrid with a made-up Ed25519 half → BAD_SIGNATURE', async () => {
      const padded = withSig(pqToken, (s) => {
        const out = new Uint8Array(s.length + 64);
        out.set(s);
        out[1] = 0x02;
        return out;
      });
      await rejectsWith(verifier('hybrid').verify(padded, expectCall), 'BAD_SIGNATURE');
    });
  });

  describe('keys', () => {
    it('signed by a key nobody trusts → UNKNOWN_KEY', async () => {
      await rejectsWith(verifier().verify(await issue(stranger), expectCall), 'UNKNOWN_KEY');
    });
    it('signed by an untrusted key but claiming a trusted kid → BAD_SIGNATURE', async () => {
      const { claims } = parts(await issue(stranger));
      claims.kid = kp.kid;
      const forged = await forge(stranger, 'hybrid', claimsBytes(claims));
      // The envelope names stranger's kid: it does not match the claims.
      await rejectsWith(verifier().verify(forged, expectCall), 'BAD_SIGNATURE');
      // Relabel the envelope's kid too: now the trusted key's signature check fails.
      const relabelled = withSig(forged, (s) => {
        s.set(unb64(kp.kid), 2);
        return s;
      });
      await rejectsWith(verifier().verify(relabelled, expectCall), 'BAD_SIGNATURE');
    });
    it("signed by another trusted key under this key's kid → BAD_SIGNATURE", async () => {
      const { claims } = parts(token);
      const forged = withSig(await forge(other, 'hybrid', claimsBytes(claims)), (s) => {
        s.set(unb64(kp.kid), 2);
        return s;
      });
      await rejectsWith(verifier().verify(forged, expectCall), 'BAD_SIGNATURE');
    });
    it('signed by a key that has since expired → KEY_EXPIRED', async () => {
      now = T0;
      const t = await issue(expiring);
      await verifier().verify(t, expectCall);
      now = T0 + 60_000;
      await rejectsWith(verifier().verify(t, expectCall), 'KEY_EXPIRED');
      now = T0;
    });
    it('an expired key cannot sign', async () => {
      now = T0 + 60_000;
      await rejectsWith(issue(expiring), 'KEY_EXPIRED');
      now = T0;
    });
    it('a key removed from the directory → UNKNOWN_KEY (rotation ends its permits)', async () => {
      const rotating = PublicKeyDirectory.inMemory([kp.publicKeys(), other.publicKeys()]);
      const v = new PermitVerifier({ keys: rotating, mode: 'hybrid', audience: AUD, clock: () => T0 });
      const fromOther = await issue(other);
      await v.verify(fromOther, expectCall);
      rotating.remove(other.kid);
      await rejectsWith(v.verify(fromOther, expectCall), 'UNKNOWN_KEY');
      await v.verify(token, expectCall);
    });
    it('a signature made for another domain (e.g. an audit checkpoint) over the same bytes → BAD_SIGNATURE', async () => {
      const forged = await forge(kp, 'hybrid', unb64(parts(token).claimsB64), 'audit-checkpoint');
      await rejectsWith(verifier().verify(forged, expectCall), 'BAD_SIGNATURE');
    });
  });

  describe('time', () => {
    it('expired → EXPIRED, with the skew honoured at the boundary', async () => {
      now = T0 + 30_000 + 1_999;
      await verifier().verify(token, expectCall);
      now = T0 + 30_000 + 2_000;
      await rejectsWith(verifier().verify(token, expectCall), 'EXPIRED');
      now = T0;
    });
    it('from the future → NOT_YET_VALID', async () => {
      now = T0;
      const future = await issue(kp, 'hybrid', { issuedAt: T0 + 10_000, expiresAt: T0 + 40_000 });
      await rejectsWith(verifier().verify(future, expectCall), 'NOT_YET_VALID');
      now = T0 + 8_000;
      await verifier().verify(future, expectCall);
      now = T0;
    });
  });

  describe('binding to the call', () => {
    it('wrong audience → WRONG_AUDIENCE', async () => {
      await rejectsWith(verifier('hybrid', { audience: 'payments' }).verify(token, expectCall), 'WRONG_AUDIENCE');
    });
    it('a permit with no audience given to a verifier that expects one → WRONG_AUDIENCE', async () => {
      const t = await issue(kp, 'hybrid', { audience: undefined });
      await rejectsWith(verifier().verify(t, expectCall), 'WRONG_AUDIENCE');
    });
    it('wrong action → WRONG_ACTION', async () => {
      await rejectsWith(verifier().verify(token, { action: 'fs.write_file', args: ARGS }), 'WRONG_ACTION');
    });
    it.each([
      ['another path', { ...ARGS, path: '/etc/shadow' }],
      ['a nested value', { ...ARGS, opts: { ...ARGS.opts, lines: [1, 2, 4] } }],
      ['an extra key', { ...ARGS, recursive: true }],
      ['a missing key', { path: ARGS.path }],
      ['a number as a string', { ...ARGS, opts: { ...ARGS.opts, lines: ['1', 2, 3] } }],
      ['no arguments', undefined],
    ])('different args (%s) → ARGS_MISMATCH', async (_n, args) => {
      await rejectsWith(verifier().verify(token, { action: ACTION, args }), 'ARGS_MISMATCH');
    });
    it('the same args with keys in another order still verify', async () => {
      const reordered = { opts: { lines: [1, 2, 3], encoding: 'utf8' }, path: '/work/report.txt' };
      await expect(verifier().verify(token, { action: ACTION, args: reordered })).resolves.toMatchObject({ act: ACTION });
    });
    it('args that cannot be canonicalised → ARGS_MISMATCH', async () => {
      await rejectsWith(verifier().verify(token, { action: ACTION, args: { path: '\ud800' } }), 'ARGS_MISMATCH');
    });
  });

  describe('single use', () => {
    it('the second use of a permit → REPLAYED', async () => {
      const v = verifier('hybrid', { replay: new InMemoryReplayStore() });
      const t = await issue(kp);
      await v.verify(t, expectCall);
      await rejectsWith(v.verify(t, expectCall), 'REPLAYED');
    });
    it('a failed verification does not burn the permit', async () => {
      const v = verifier('hybrid', { replay: new InMemoryReplayStore() });
      const t = await issue(kp);
      await rejectsWith(v.verify(t, { action: 'fs.write_file', args: ARGS }), 'WRONG_ACTION');
      await v.verify(t, expectCall);
    });
    it('a replay store that fails → REPLAY_CHECK_FAILED (fail closed)', async () => {
      const broken: ReplayStore = {
        claim: async () => {
          throw new Error('redis down');
        },
      };
      await rejectsWith(verifier('hybrid', { replay: broken }).verify(token, expectCall), 'REPLAY_CHECK_FAILED');
    });
  });

  describe('claims the signer would never write', () => {
    it('validly signed but not canonical (whitespace) → BAD_FORMAT', async () => {
      const { claims } = parts(token);
      const forged = await forge(kp, 'hybrid', new TextEncoder().encode(JSON.stringify(claims, null, 1)));
      await rejectsWith(verifier().verify(forged, expectCall), 'BAD_FORMAT');
    });
    it('validly signed with a duplicated key → BAD_FORMAT', async () => {
      const text = new TextDecoder().decode(unb64(parts(token).claimsB64));
      const dup = text.replace('"act":', '"act":"fs.delete","act":');
      const forged = await forge(kp, 'hybrid', new TextEncoder().encode(dup));
      await rejectsWith(verifier().verify(forged, expectCall), 'BAD_FORMAT');
    });
    it('validly signed with an unknown claim → BAD_FORMAT', async () => {
      const { claims } = parts(token);
      await rejectsWith(verifier().verify(await forge(kp, 'hybrid', claimsBytes({ ...claims, admin: true })), expectCall), 'BAD_FORMAT');
    });
    it('validly signed with exp before iat → BAD_FORMAT', async () => {
      const { claims } = parts(token);
      await rejectsWith(verifier().verify(await forge(kp, 'hybrid', claimsBytes({ ...claims, exp: T0 - 1 })), expectCall), 'BAD_FORMAT');
    });

    // JSON.parse turns "\udc00" into a lone surrogate; canonicalJson refuses to encode one and threw a
    // TypeError straight out of verify(): no stable code, and reachable by anyone before any signature check.
    const noAudience = () => new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', clock: () => T0 });
    it('validly signed with an escaped lone surrogate in sub → BAD_FORMAT, a PermitError', async () => {
      const token = await forge(kp, 'hybrid', utf8(claimsJsonWithSub(kp, T0, '"\\udc00"')));
      const err = await rejectionOf(noAudience().verify(token));
      expect(err).toBeInstanceOf(PermitError);
      expect((err as PermitError).code).toBe('BAD_FORMAT');
    });
    it('control: the same route with a well-formed sub verifies', async () => {
      const token = await forge(kp, 'hybrid', utf8(claimsJsonWithSub(kp, T0, '"alice"')));
      expect((await noAudience().verify(token)).sub).toBe('alice');
    });
  });
});

describe('a permit bound to its principal and session', () => {
  /** Issues without the worker pool, as alice, for fs.read of /a. */
  async function issueFor(signer: KeyPair, opts: { sessionId?: string } = {}): Promise<string> {
    const s = PermitSigner.fromKeyPair(signer, { mode: 'hybrid', pool: false });
    try {
      return (
        await s.issue({
          principalId: 'alice',
          principalKind: 'agent',
          action: 'fs.read',
          args: { path: '/a' },
          evaluationId: 'e-1',
          audience: 'fs',
          issuedAt: T0,
          expiresAt: T0 + 30_000,
          ...(opts.sessionId !== undefined ? { sessionId: opts.sessionId } : {}),
        })
      ).token;
    } finally {
      await s.close();
    }
  }
  const bound = (replay?: InMemoryReplayStore) =>
    new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'fs', clock: () => T0, ...(replay ? { replay } : {}) });
  const call: PermitExpectation = { action: 'fs.read', args: { path: '/a' } };

  it('accepts a permit for the expected principal and session', async () => {
    const token = await issueFor(kp, { sessionId: 's-1' });
    const claims = await bound().verify(token, { ...call, principal: 'alice', session: 's-1' });
    expect(claims).toMatchObject({ sub: 'alice', sid: 's-1' });
  });

  it('refuses a permit for another principal (WRONG_PRINCIPAL)', async () => {
    const token = await issueFor(kp, { sessionId: 's-1' });
    await rejectsWith(bound().verify(token, { ...call, principal: 'bob' }), 'WRONG_PRINCIPAL');
  });

  it('refuses a permit for another session, or for no session, when one is expected (WRONG_SESSION)', async () => {
    await rejectsWith(bound().verify(await issueFor(kp, { sessionId: 's-1' }), { ...call, session: 's-2' }), 'WRONG_SESSION');
    await rejectsWith(bound().verify(await issueFor(kp), { ...call, session: 's-1' }), 'WRONG_SESSION');
  });

  it('does not use up a permit it refuses for its principal or session', async () => {
    const replay = new InMemoryReplayStore();
    const v = bound(replay);
    const token = await issueFor(kp, { sessionId: 's-1' });
    await rejectsWith(v.verify(token, { ...call, principal: 'mallory', session: 's-1' }), 'WRONG_PRINCIPAL');
    await rejectsWith(v.verify(token, { ...call, principal: 'alice', session: 's-9' }), 'WRONG_SESSION');
    expect((await v.verify(token, { ...call, principal: 'alice', session: 's-1' })).jti).toBeTruthy();
    await rejectsWith(v.verify(token, { ...call, principal: 'alice', session: 's-1' }), 'REPLAYED');
  });
});
