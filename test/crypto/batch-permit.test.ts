import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashArgs } from '../../src/engine/canonical-json.ts';
import { Gate } from '../../src/engine/gate.ts';
import type { PermitRequest } from '../../src/engine/ports.ts';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import { mlDsa } from '../../src/crypto/backend.ts';
import { BATCH_DOMAIN, decodeProof, encodeProof, rootMessage } from '../../src/crypto/batch-proof.ts';
import { buildTree } from '../../src/crypto/merkle.ts';
import { joinBatchToken } from '../../src/crypto/permit-token.ts';
import { signEnvelope } from '../../src/crypto/signatures.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PublicKeyDirectory } from '../../src/crypto/key-directory.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import type { SignatureMode } from '../../src/crypto/signatures.ts';
import { PermitError } from '../../src/crypto/errors.ts';
import { utf8 } from '../../src/crypto/encoding.ts';
import { ENVELOPE_FLIPS, T0, b64, claimsBytes, claimsJsonWithSub, flipBit, forge, rejectionOf, rejectsWith, unb64 } from './helpers.ts';

const ARGS = { path: '/work/report.txt', opts: { encoding: 'utf8', lines: [1, 2, 3] } };
const ACTION = 'fs.read_file';
const AUD = 'fs';
const expectCall = { action: ACTION, args: ARGS };

let kp: KeyPair;
let other: KeyPair;
let stranger: KeyPair;
let expiring: KeyPair;
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

/** One batch of `n` permits (the batch closes at maxSize = n), signed on this thread. */
async function batchOf(n: number, key: KeyPair = kp, mode: SignatureMode = 'hybrid', over: Partial<PermitRequest> = {}): Promise<string[]> {
  const signer = PermitSigner.fromKeyPair(key, { mode, pool: false, batch: { maxSize: n, maxDelayMs: 10_000 } });
  const issued = await Promise.all(Array.from({ length: n }, (_, i) => signer.issue(request({ evaluationId: `eval-${i}`, ...over }))));
  await signer.close();
  return issued.map((p) => p.token);
}

function verifier(mode: SignatureMode = 'hybrid', extra: Partial<ConstructorParameters<typeof PermitVerifier>[0]> = {}): PermitVerifier {
  return new PermitVerifier({ keys: dir, mode, audience: AUD, clock: () => now, ...extra });
}

interface BatchParts {
  claimsB64: string;
  proofB64: string;
  sigB64: string;
  claims: Record<string, unknown>;
}
function bparts(token: string): BatchParts {
  const [, claimsB64, proofB64, sigB64] = token.split('.') as [string, string, string, string];
  return { claimsB64, proofB64, sigB64, claims: JSON.parse(Buffer.from(claimsB64, 'base64url').toString('utf8')) };
}
const join = (p: { claimsB64: string; proofB64: string; sigB64: string }) => `kv1.${p.claimsB64}.${p.proofB64}.${p.sigB64}`;
function withProof(token: string, change: (p: { count: number; index: number; path: Uint8Array[] }) => void): string {
  const p = bparts(token);
  const proof = decodeProof(unb64(p.proofB64));
  const copy = { ...proof, path: proof.path.map((x) => x.slice()) };
  change(copy);
  return join({ ...p, proofB64: b64(encodeProof(copy.count, copy.index, copy.path)) });
}

let batch8: string[]; // one batch of 8 hybrid permits by kp (eval-0 … eval-7)
let batch8b: string[]; // another batch of 8, same requests
let batch5: string[];
let pqBatch: string[];

beforeAll(async () => {
  kp = KeyPair.generate({ now: T0 });
  other = KeyPair.generate({ now: T0 });
  stranger = KeyPair.generate({ now: T0 });
  expiring = KeyPair.generate({ now: T0, expiresInMs: 60_000 });
  dir = PublicKeyDirectory.inMemory([kp.publicKeys(), other.publicKeys(), expiring.publicKeys()]);
  batch8 = await batchOf(8);
  batch8b = await batchOf(8);
  batch5 = await batchOf(5);
  pqBatch = await batchOf(3, kp, 'pq');
});

afterEach(() => {
  vi.restoreAllMocks();
  now = T0;
});

describe('batch-signed permits', () => {
  it('are kv1 tokens with four parts; every permit of a batch verifies, bound to its own claims', async () => {
    const v = verifier();
    for (const [i, t] of batch8.entries()) {
      expect(t).toMatch(/^kv1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      const claims = await v.verify(t, expectCall);
      expect(claims).toMatchObject({
        kid: kp.kid,
        sub: 'alice',
        act: ACTION,
        aud: AUD,
        eid: `eval-${i}`,
        args: hashArgs(ARGS),
        iat: T0,
        exp: T0 + 30_000,
      });
    }
    expect(new Set(batch8.map((t) => bparts(t).sigB64)).size).toBe(1);
    for (const t of [...batch5, ...batch8b]) await v.verify(t, expectCall);
    for (const t of pqBatch) await verifier('pq').verify(t, expectCall);
  });

  it('the verifier checks a root signature once and caches it; rootCacheSize 0 checks every time; the cache is bounded', async () => {
    const spy = vi.spyOn(mlDsa(), 'verify');
    const v = verifier();
    for (const t of batch8) await v.verify(t, expectCall);
    expect(spy).toHaveBeenCalledTimes(1);
    const uncached = verifier('hybrid', { rootCacheSize: 0 });
    for (const t of batch8) await uncached.verify(t, expectCall);
    expect(spy).toHaveBeenCalledTimes(9);
    const tiny = verifier('hybrid', { rootCacheSize: 1 });
    await tiny.verify(batch8[0]!, expectCall);
    await tiny.verify(batch8b[0]!, expectCall);
    await tiny.verify(batch8[1]!, expectCall);
    expect(spy).toHaveBeenCalledTimes(12);
  });

  it('single-signed permits keep verifying on the same verifier', async () => {
    const single = (await PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool: false }).issue(request())).token;
    expect(single.split('.')).toHaveLength(3);
    const v = verifier();
    await v.verify(batch8[0]!, expectCall);
    await v.verify(single, expectCall);
  });

  describe('tampered claims → BAD_SIGNATURE (cached root or not)', () => {
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
      [
        'evaluation id of a sibling permit',
        (c) => {
          c.eid = 'eval-1';
        },
      ],
    ];
    it.each(edits)('%s', async (_name, edit) => {
      const v = verifier();
      await v.verify(batch8[0]!, expectCall); // root now cached
      const p = bparts(batch8[0]!);
      edit(p.claims);
      await rejectsWith(v.verify(join({ ...p, claimsB64: b64(claimsBytes(p.claims)) }), expectCall), 'BAD_SIGNATURE');
    });
  });

  it('bit flips anywhere in the claims or the proof never verify (BAD_FORMAT or BAD_SIGNATURE)', async () => {
    const v = verifier();
    await v.verify(batch8[3]!, expectCall);
    const p = bparts(batch8[3]!);
    const claims = unb64(p.claimsB64);
    const proof = unb64(p.proofB64);
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.nat(), fc.nat(7), async (inClaims, at, bit) => {
        const t = inClaims
          ? join({ ...p, claimsB64: b64(flipBit(claims, at % claims.length, bit)) })
          : join({ ...p, proofB64: b64(flipBit(proof, at % proof.length, bit)) });
        await rejectsWith(v.verify(t, expectCall), 'BAD_FORMAT', 'BAD_SIGNATURE');
      }),
      { numRuns: 60 },
    );
  });

  describe('tampered root signature envelope', () => {
    it.each(ENVELOPE_FLIPS)('bit flip in the %s (offset %i) → %s, even with the genuine root cached', async (_n, offset, code) => {
      const v = verifier();
      await v.verify(batch8[0]!, expectCall);
      const p = bparts(batch8[1]!);
      await rejectsWith(v.verify(join({ ...p, sigB64: b64(flipBit(unb64(p.sigB64), offset as number, 1)) }), expectCall), code as string);
    });
  });

  describe('truncation and extension → BAD_FORMAT', () => {
    it.each([
      ['last character dropped', (t: string) => t.slice(0, -1)],
      ['signature cut in half', (t: string) => t.slice(0, t.lastIndexOf('.') + 2000)],
      ['signature part missing', (t: string) => t.slice(0, t.lastIndexOf('.'))],
      [
        'proof part emptied',
        (t: string) => {
          const p = t.split('.');
          return `kv1.${p[1]}..${p[3]}`;
        },
      ],
      [
        'proof part not base64url',
        (t: string) => {
          const p = t.split('.');
          return `kv1.${p[1]}.${p[2]}=.${p[3]}`;
        },
      ],
      ['a fifth part appended', (t: string) => `${t}.AAAA`],
      ['bytes appended to the signature', (t: string) => `${t}AAAA`],
      ['wrong prefix', (t: string) => `kv2${t.slice(3)}`],
      [
        'claims cut short',
        (t: string) => {
          const p = t.split('.');
          return `kv1.${p[1]!.slice(0, 40)}.${p[2]}.${p[3]}`;
        },
      ],
      ['padding appended', (t: string) => `${t}==`],
      ['a character outside base64url', (t: string) => `${t.slice(0, 10)}+${t.slice(11)}`],
      ['oversized', (t: string) => `${t}${'A'.repeat(20_000)}`],
      ['empty', () => ''],
    ])('%s', async (_n, mangle) => {
      await rejectsWith(verifier().verify(mangle(batch8[2]!), expectCall), 'BAD_FORMAT');
    });
  });

  describe('proofs that do not belong', () => {
    it('a leaf moved to another index → BAD_SIGNATURE (same path length) or BAD_FORMAT (path does not fit)', async () => {
      const v = verifier();
      await v.verify(batch8[2]!, expectCall);
      for (let j = 0; j < 8; j++) {
        if (j !== 2)
          await rejectsWith(
            v.verify(
              withProof(batch8[2]!, (p) => {
                p.index = j;
              }),
              expectCall,
            ),
            'BAD_SIGNATURE',
          );
      }
      // In a batch of 5, leaf 4 sits one level from the root, the others three.
      await rejectsWith(
        v.verify(
          withProof(batch5[4]!, (p) => {
            p.index = 0;
          }),
          expectCall,
        ),
        'BAD_FORMAT',
      );
    });
    it('the proof of a sibling permit on these claims → BAD_SIGNATURE', async () => {
      const v = verifier();
      await v.verify(batch8[0]!, expectCall);
      await rejectsWith(v.verify(join({ ...bparts(batch8[0]!), proofB64: bparts(batch8[5]!).proofB64 }), expectCall), 'BAD_SIGNATURE');
    });
    it('a path from another batch → BAD_SIGNATURE, with both roots cached', async () => {
      const v = verifier();
      await v.verify(batch8[4]!, expectCall);
      await v.verify(batch8b[4]!, expectCall);
      await rejectsWith(v.verify(join({ ...bparts(batch8[4]!), proofB64: bparts(batch8b[4]!).proofB64 }), expectCall), 'BAD_SIGNATURE');
    });
    it('the root signature of another batch → BAD_SIGNATURE, with both roots cached', async () => {
      const v = verifier();
      await v.verify(batch8[6]!, expectCall);
      await v.verify(batch8b[6]!, expectCall);
      await rejectsWith(v.verify(join({ ...bparts(batch8[6]!), sigB64: bparts(batch8b[6]!).sigB64 }), expectCall), 'BAD_SIGNATURE');
    });
    it('a truncated or extended path → BAD_FORMAT', async () => {
      const v = verifier();
      await v.verify(batch8[1]!, expectCall);
      await rejectsWith(
        v.verify(
          withProof(batch8[1]!, (p) => {
            p.path.pop();
          }),
          expectCall,
        ),
        'BAD_FORMAT',
      );
      await rejectsWith(
        v.verify(
          withProof(batch8[1]!, (p) => {
            p.path.push(new Uint8Array(32));
          }),
          expectCall,
        ),
        'BAD_FORMAT',
      );
      await rejectsWith(
        v.verify(
          withProof(batch8[1]!, (p) => {
            p.path = [...p.path, ...p.path];
          }),
          expectCall,
        ),
        'BAD_FORMAT',
      );
    });
    it('a wrong leaf count → BAD_FORMAT when the path cannot fit it, else BAD_SIGNATURE — even when the path still gives the same root', async () => {
      const v = verifier();
      await v.verify(batch8[0]!, expectCall);
      await rejectsWith(
        v.verify(
          withProof(batch8[0]!, (p) => {
            p.count = 9;
          }),
          expectCall,
        ),
        'BAD_FORMAT',
      );
      await rejectsWith(
        v.verify(
          withProof(batch8[0]!, (p) => {
            p.count = 7;
          }),
          expectCall,
        ),
        'BAD_SIGNATURE',
      );
      // Leaf 0 of 5 climbs the same three left turns as leaf 0 of 8: same computed root, but the
      // signed root message binds the count.
      await rejectsWith(
        v.verify(
          withProof(batch8[0]!, (p) => {
            p.count = 5;
          }),
          expectCall,
        ),
        'BAD_SIGNATURE',
      );
      await rejectsWith(
        v.verify(
          withProof(batch8[0]!, (p) => {
            p.count = 0;
          }),
          expectCall,
        ),
        'BAD_FORMAT',
      );
    });
    it('a batch root signature on a single-signed token, and a single signature on a batch token → BAD_SIGNATURE', async () => {
      const single = (await PermitSigner.fromKeyPair(kp, { mode: 'hybrid', pool: false }).issue(request())).token;
      const [, sClaims, sSig] = single.split('.') as [string, string, string];
      const v = verifier();
      await v.verify(batch8[0]!, expectCall);
      const p = bparts(batch8[0]!);
      await rejectsWith(v.verify(`kv1.${p.claimsB64}.${p.sigB64}`, expectCall), 'BAD_SIGNATURE');
      await rejectsWith(
        v.verify(join({ claimsB64: sClaims, proofB64: b64(encodeProof(1, 0, [])), sigB64: sSig }), expectCall),
        'BAD_SIGNATURE',
      );
    });
    it('claims signed as a one-leaf batch in another domain (e.g. plain permit) do not pass as a batch root', async () => {
      const p = bparts(batch8[0]!);
      const forged = await forge(kp, 'hybrid', unb64(p.claimsB64), 'permit');
      const sig = forged.split('.')[2] as string;
      await rejectsWith(verifier().verify(join({ ...p, proofB64: b64(encodeProof(1, 0, [])), sigB64: sig }), expectCall), 'BAD_SIGNATURE');
      const wrongDomain = await forge(kp, 'hybrid', unb64(p.claimsB64), BATCH_DOMAIN);
      await rejectsWith(verifier().verify(wrongDomain, expectCall), 'BAD_SIGNATURE');
    });
    it('a failed root check is not cached: the same forgery fails every time', async () => {
      const v = verifier();
      const p = bparts(batch8[0]!);
      const bad = join({ ...p, sigB64: b64(flipBit(unb64(p.sigB64), 100)) });
      await rejectsWith(v.verify(bad, expectCall), 'BAD_SIGNATURE');
      await rejectsWith(v.verify(bad, expectCall), 'BAD_SIGNATURE');
      await v.verify(batch8[0]!, expectCall);
      await rejectsWith(v.verify(bad, expectCall), 'BAD_SIGNATURE');
    });
  });

  describe('modes and keys', () => {
    it('a hybrid verifier refuses a PQ-only batch and a PQ-only verifier a hybrid one → ALG_MISMATCH', async () => {
      await rejectsWith(verifier('hybrid').verify(pqBatch[0]!, expectCall), 'ALG_MISMATCH');
      await rejectsWith(verifier('pq').verify(batch8[0]!, expectCall), 'ALG_MISMATCH');
    });
    it('stripping the Ed25519 half of a batch signature → BAD_SIGNATURE', async () => {
      const p = bparts(batch8[0]!);
      const s = unb64(p.sigB64);
      const stripped = s.slice(0, s.length - 64);
      stripped[1] = 0x01;
      await rejectsWith(verifier('pq').verify(join({ ...p, sigB64: b64(stripped) }), expectCall), 'BAD_SIGNATURE');
    });
    it('signed by a key nobody trusts → UNKNOWN_KEY; by another trusted key under this kid → BAD_SIGNATURE', async () => {
      await rejectsWith(verifier().verify((await batchOf(2, stranger))[0]!, expectCall), 'UNKNOWN_KEY');
      const theirs = bparts((await batchOf(2, other))[0]!);
      const mine = bparts(batch8[0]!);
      const relabelled = unb64(theirs.sigB64);
      relabelled.set(unb64(kp.kid), 2);
      await rejectsWith(verifier().verify(join({ ...mine, sigB64: b64(relabelled) }), expectCall), 'BAD_SIGNATURE');
    });
    it('a cached root stops verifying when its key leaves the directory (UNKNOWN_KEY) or expires (KEY_EXPIRED)', async () => {
      const rotating = PublicKeyDirectory.inMemory([kp.publicKeys(), other.publicKeys()]);
      const v = new PermitVerifier({ keys: rotating, mode: 'hybrid', audience: AUD, clock: () => now });
      const fromOther = await batchOf(2, other);
      await v.verify(fromOther[0]!, expectCall);
      rotating.remove(other.kid);
      await rejectsWith(v.verify(fromOther[1]!, expectCall), 'UNKNOWN_KEY');

      const exp = await batchOf(2, expiring);
      const v2 = verifier();
      await v2.verify(exp[0]!, expectCall);
      now = T0 + 60_000;
      await rejectsWith(v2.verify(exp[1]!, expectCall), 'KEY_EXPIRED');
    });
  });

  describe('claims the signer would never write, in a validly signed batch → BAD_FORMAT', () => {
    /** A one-token batch over arbitrary leaf bytes, signed the way a holder of kp could. */
    async function forgeBatch(leaf: Uint8Array): Promise<string> {
      const { root, paths } = buildTree([leaf, claimsBytes({ filler: true })]);
      const envelope = await signEnvelope(kp, 'hybrid', BATCH_DOMAIN, rootMessage(2, root));
      return joinBatchToken(leaf, b64(encodeProof(2, 0, paths[0]!)), envelope);
    }
    const c = () => bparts(batch8[0]!).claims;
    it.each([
      ['not canonical (whitespace)', () => new TextEncoder().encode(JSON.stringify(c(), null, 1))],
      [
        'a duplicated key',
        () => new TextEncoder().encode(new TextDecoder().decode(claimsBytes(c())).replace('"act":', '"act":"fs.delete","act":')),
      ],
      ['an unknown claim', () => claimsBytes({ ...c(), admin: true })],
      ['exp before iat', () => claimsBytes({ ...c(), exp: T0 - 1 })],
    ])('%s', async (_n, leaf) => {
      const forged = await forgeBatch(leaf());
      await rejectsWith(verifier().verify(forged, expectCall), 'BAD_FORMAT');
    });
    it('control: the same forgery route with the genuine claims verifies', async () => {
      await verifier().verify(await forgeBatch(claimsBytes(bparts(batch8[0]!).claims)), expectCall);
    });
    it('an escaped lone surrogate in sub, in a one-leaf batch → BAD_FORMAT, a PermitError', async () => {
      // JSON.parse turns "\ud800" into a lone surrogate, which canonicalJson refuses to encode.
      const leaf = utf8(claimsJsonWithSub(kp, T0, '"x\\ud800"'));
      const { root, paths } = buildTree([leaf]);
      const envelope = await signEnvelope(kp, 'hybrid', 'permit-batch', rootMessage(1, root));
      const token = joinBatchToken(leaf, b64(encodeProof(1, 0, paths[0] as Uint8Array[])), envelope);
      const err = await rejectionOf(new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', clock: () => T0 }).verify(token));
      expect(err).toBeInstanceOf(PermitError);
      expect((err as PermitError).code).toBe('BAD_FORMAT');
    });
  });

  describe('time, binding and single use work as for single-signed permits', () => {
    it('an expired key cannot sign a batch → KEY_EXPIRED', async () => {
      now = T0 + 60_000;
      await rejectsWith(batchOf(2, expiring), 'KEY_EXPIRED');
    });
    it('expired → EXPIRED (skew honoured); from the future → NOT_YET_VALID', async () => {
      const v = verifier();
      now = T0 + 30_000 + 1_999;
      await v.verify(batch8[0]!, expectCall);
      now = T0 + 30_000 + 2_000;
      await rejectsWith(v.verify(batch8[1]!, expectCall), 'EXPIRED');
      now = T0;
      const future = await batchOf(2, kp, 'hybrid', { issuedAt: T0 + 10_000, expiresAt: T0 + 40_000 });
      await rejectsWith(v.verify(future[0]!, expectCall), 'NOT_YET_VALID');
    });
    it('wrong audience, wrong action, other args → WRONG_AUDIENCE / WRONG_ACTION / ARGS_MISMATCH', async () => {
      await rejectsWith(verifier('hybrid', { audience: 'payments' }).verify(batch8[0]!, expectCall), 'WRONG_AUDIENCE');
      await rejectsWith(verifier().verify(batch8[0]!, { action: 'fs.write_file', args: ARGS }), 'WRONG_ACTION');
      await rejectsWith(verifier().verify(batch8[0]!, { action: ACTION, args: { ...ARGS, path: '/etc/shadow' } }), 'ARGS_MISMATCH');
    });
    it('each permit of a batch is single-use on its own: the second use → REPLAYED, its siblings still verify', async () => {
      const v = verifier('hybrid', { replay: new InMemoryReplayStore() });
      await v.verify(batch8b[0]!, expectCall);
      await rejectsWith(v.verify(batch8b[0]!, expectCall), 'REPLAYED');
      await v.verify(batch8b[1]!, expectCall);
    });
  });
});

describe('a gate with a batch signer', () => {
  it('signs concurrent permits in shared batches on the worker pool; each verifies once and only once', async () => {
    const policy = { policies: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read*' }] }] };
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'hybrid', batch: { maxDelayMs: 20, maxSize: 64 } });
    const gate = Gate.fromDict(policy, { signer, clock: () => now, drift: false });
    const verdicts = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        gate.evaluate({
          principalId: 'alice',
          principalKind: 'agent',
          actionName: 'fs.read_file',
          params: { ...ARGS, n: i },
          audience: AUD,
        }),
      ),
    );
    await signer.close();
    const tool = verifier('hybrid', { replay: new InMemoryReplayStore() });
    const roots = new Set<string>();
    for (const [i, verdict] of verdicts.entries()) {
      expect(verdict.kind).toBe('permit');
      if (verdict.kind !== 'permit') continue;
      const token = verdict.permit as string;
      roots.add(bparts(token).sigB64);
      const claims = await tool.verify(token, { action: 'fs.read_file', args: { ...ARGS, n: i } });
      expect(claims.jti).toBe(verdict.permitId);
      await rejectsWith(tool.verify(token, { action: 'fs.read_file', args: { ...ARGS, n: i } }), 'REPLAYED');
    }
    expect(roots.size).toBeLessThan(24);
  });
});
