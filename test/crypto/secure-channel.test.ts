import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { KeyPair } from '../../src/crypto/keys.ts';
import { SecureChannel, type SecureChannelOptions } from '../../src/crypto/secure-channel.ts';
import { T0, flipBit, throwsWith } from './helpers.ts';

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
afterEach(() => {
  secrets.recording = false;
  secrets.seen = [];
});

let alice: KeyPair;
let bob: KeyPair;
let eve: KeyPair;
let now = T0;
const clock = () => now;
const data = new TextEncoder().encode('{"invalidate":"session-42"}');
const CTX = { contextId: 'bus/invalidation' };
const OPEN = { expectedContextId: 'bus/invalidation' };

// Header layout: version 1 | sender kid 16 | recipient kid 16 | time 8 | msg id 16 | ctx len 2 | ctx
const HEADER = 59 + CTX.contextId.length;

beforeAll(() => {
  alice = KeyPair.generate({ now: T0 });
  bob = KeyPair.generate({ now: T0 });
  eve = KeyPair.generate({ now: T0 });
});

function pair(opts: SecureChannelOptions = {}): { a: SecureChannel; b: SecureChannel } {
  return {
    a: new SecureChannel(alice, bob.publicKeys(), { clock, ...opts }),
    b: new SecureChannel(bob, alice.publicKeys(), { clock, ...opts }),
  };
}

describe('secure channel', () => {
  it('delivers a payload both ways, in hybrid and PQ-only modes', () => {
    now = T0;
    for (const mode of ['hybrid', 'pq'] as const) {
      const { a, b } = pair({ mode });
      expect(b.open(a.seal(data, CTX), OPEN)).toEqual(data);
      expect(a.open(b.seal(new Uint8Array(0), CTX), OPEN)).toEqual(new Uint8Array(0));
    }
  });

  it('does not show the payload on the wire', () => {
    const sealed = pair().a.seal(data, CTX);
    expect(Buffer.from(sealed).includes(Buffer.from(data))).toBe(false);
  });

  it('refuses a message for someone else (WRONG_RECIPIENT)', () => {
    const toBob = pair().a.seal(data, CTX);
    throwsWith(() => new SecureChannel(eve, alice.publicKeys(), { clock }).open(toBob, OPEN), 'WRONG_RECIPIENT');
  });

  it('refuses a message from a key that is not the peer (UNKNOWN_SENDER)', () => {
    const fromEve = new SecureChannel(eve, bob.publicKeys(), { clock }).seal(data, CTX);
    throwsWith(() => pair().b.open(fromEve, OPEN), 'UNKNOWN_SENDER');
  });

  it('refuses a message sealed for another context (WRONG_CONTEXT)', () => {
    const sealed = pair().a.seal(data, { contextId: 'bus/audit' });
    throwsWith(() => pair().b.open(sealed, OPEN), 'WRONG_CONTEXT');
  });

  it('refuses tampered bytes anywhere after the routing header (DECRYPT_FAILED)', () => {
    now = T0;
    const { a, b } = pair();
    const sealed = a.seal(data, CTX);
    for (const offset of [33, 40, 45, HEADER, HEADER + 500, HEADER + 1088, HEADER + 1100, sealed.length - 40, sealed.length - 1]) {
      throwsWith(() => b.open(flipBit(sealed, offset), OPEN), 'DECRYPT_FAILED', ...(offset >= 33 && offset < 41 ? ['STALE'] : []));
    }
  });

  it('refuses a truncated or extended message', () => {
    const { a, b } = pair();
    const sealed = a.seal(data, CTX);
    throwsWith(() => b.open(sealed.subarray(0, sealed.length - 1), OPEN), 'DECRYPT_FAILED');
    throwsWith(() => b.open(sealed.subarray(0, 100), OPEN), 'BAD_FORMAT');
    throwsWith(() => b.open(new Uint8Array([...sealed, 0]), OPEN), 'DECRYPT_FAILED');
    throwsWith(() => b.open(new Uint8Array(0), OPEN), 'BAD_FORMAT');
    throwsWith(() => b.open(flipBit(sealed, 0), OPEN), 'BAD_FORMAT');
  });

  it('refuses a message relabelled with another sender (DECRYPT_FAILED or BAD_SIGNATURE)', () => {
    // Bob, who can open Alice's messages, tries to pass a message of his own to Carol as Alice's:
    // the header is bound into the key derivation and the signature, so relabelling the sender fails.
    const carol = KeyPair.generate({ now: T0 });
    const fromBob = new SecureChannel(bob, carol.publicKeys(), { clock }).seal(data, CTX);
    const relabelled = fromBob.slice();
    relabelled.set(Buffer.from(alice.kid, 'base64url'), 1); // claim Alice as the sender
    throwsWith(() => new SecureChannel(carol, alice.publicKeys(), { clock }).open(relabelled, OPEN), 'DECRYPT_FAILED', 'BAD_SIGNATURE');
  });

  it('refuses a replay of an opened message (REPLAYED), and does not let a forgery burn an id', () => {
    now = T0;
    const { a, b } = pair();
    const sealed = a.seal(data, CTX);
    throwsWith(() => b.open(flipBit(sealed, sealed.length - 1), OPEN), 'DECRYPT_FAILED');
    expect(b.open(sealed, OPEN)).toEqual(data);
    throwsWith(() => b.open(sealed, OPEN), 'REPLAYED');
    now = T0 + 59_000;
    throwsWith(() => b.open(sealed, OPEN), 'REPLAYED');
  });

  it('refuses stale messages and messages from the future (STALE)', () => {
    now = T0;
    const { a, b } = pair({ windowMs: 60_000, skewMs: 5_000 });
    const sealed = a.seal(data, CTX);
    now = T0 + 60_001;
    throwsWith(() => b.open(sealed, OPEN), 'STALE');
    now = T0 - 5_001;
    throwsWith(() => b.open(sealed, OPEN), 'STALE');
    now = T0 - 5_000;
    expect(b.open(sealed, OPEN)).toEqual(data);
    now = T0;
  });

  it('never forgets an id inside the window: a full cache refuses (REPLAY_CACHE_FULL), then frees stale slots', () => {
    now = T0;
    const { a, b } = pair({ maxReplayEntries: 2, windowMs: 10_000 });
    const m1 = a.seal(data, CTX);
    const m2 = a.seal(data, CTX);
    const m3 = a.seal(data, CTX);
    b.open(m1, OPEN);
    b.open(m2, OPEN);
    throwsWith(() => b.open(m3, OPEN), 'REPLAY_CACHE_FULL');
    throwsWith(() => b.open(m1, OPEN), 'REPLAYED');
    now = T0 + 10_001;
    const m4 = a.seal(data, CTX);
    expect(b.open(m4, OPEN)).toEqual(data); // m1 and m2 are stale now: their slots were freed
    throwsWith(() => b.open(m1, OPEN), 'STALE');
  });

  it('refuses a sender signature in the other mode (ALG_MISMATCH), both ways', () => {
    now = T0;
    throwsWith(() => pair({ mode: 'hybrid' }).b.open(pair({ mode: 'pq' }).a.seal(data, CTX), OPEN), 'ALG_MISMATCH');
    throwsWith(() => pair({ mode: 'pq' }).b.open(pair({ mode: 'hybrid' }).a.seal(data, CTX), OPEN), 'ALG_MISMATCH');
  });

  it('refuses to seal to an expired key and to open from one (KEY_EXPIRED)', () => {
    now = T0;
    const short = KeyPair.generate({ now: T0, expiresInMs: 1_000 });
    const toShort = new SecureChannel(alice, short.publicKeys(), { clock });
    const fromShort = new SecureChannel(short, alice.publicKeys(), { clock });
    const sealed = fromShort.seal(data, CTX);
    now = T0 + 1_000;
    throwsWith(() => toShort.seal(data, CTX), 'KEY_EXPIRED');
    throwsWith(() => toShort.open(sealed, OPEN), 'KEY_EXPIRED');
    now = T0;
  });
});

describe('secure channel context ids with a lone surrogate', () => {
  // contextBytes UTF-8-encoded the id as it was, and TextEncoder maps a lone surrogate to U+FFFD:
  // a message sealed for context "tenant-\uFFFD" opened under "tenant-\uD800" (another id).
  it('are refused when sealing and when opening, so two ids never share one context', () => {
    const a = new SecureChannel(alice, bob.publicKeys(), { clock: () => T0 });
    const b = new SecureChannel(bob, alice.publicKeys(), { clock: () => T0 });
    const sealed = a.seal(new Uint8Array([1, 2, 3]), { contextId: 'tenant-\uFFFD' });
    expect(() => b.open(sealed, { expectedContextId: 'tenant-\uD800' })).toThrow(TypeError);
    expect(() => a.seal(new Uint8Array([1]), { contextId: 'tenant-\uD800' })).toThrow(TypeError);
    expect(b.open(sealed, { expectedContextId: 'tenant-\uFFFD' })).toEqual(new Uint8Array([1, 2, 3]));
  });
});

describe('secure channel with an expired own key', () => {
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

describe('secure channel ephemeral secrets', () => {
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
    throwsWith(
      () => new SecureChannel(bob, alice.publicKeys(), { clock: () => T0 }).open(sealed, { expectedContextId: 'ctx' }),
      'DECRYPT_FAILED',
    );
    expect(secrets.seen.length).toBe(4);
    for (const s of secrets.seen) expect(s.every((byte) => byte === 0)).toBe(true);
  });
});
