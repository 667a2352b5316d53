import { expect } from 'vitest';
import { canonicalJson } from '../../src/engine/canonical-json.ts';
import { fromBase64Url, toBase64Url, utf8 } from '../../src/crypto/encoding.ts';
import type { KeyPair, PublicKeyBundle } from '../../src/crypto/keys.ts';
import { joinToken } from '../../src/crypto/permit-token.ts';
import { signEnvelope, type SignatureMode } from '../../src/crypto/signatures.ts';

/** A fixed "now" for injected clocks: tests move it by hand, never sleep. */
export const T0 = 1_800_000_000_000;

export function b64(bytes: Uint8Array): string {
  return toBase64Url(bytes);
}

export function unb64(text: string): Uint8Array {
  const bytes = fromBase64Url(text);
  if (!bytes) throw new Error(`test helper: not base64url: ${text.slice(0, 20)}`);
  return bytes.slice();
}

export function parts(token: string): { claims: Record<string, unknown>; claimsB64: string; sigB64: string } {
  const [, claimsB64, sigB64] = token.split('.') as [string, string, string];
  return { claims: JSON.parse(Buffer.from(claimsB64, 'base64url').toString('utf8')), claimsB64, sigB64 };
}

/** Signs arbitrary claims bytes as a permit, the way a holder of `kp` could. */
export async function forge(kp: KeyPair, mode: SignatureMode, claimsBytes: Uint8Array, domain = 'permit'): Promise<string> {
  return joinToken(claimsBytes, await signEnvelope(kp, mode, domain, claimsBytes));
}

export function claimsBytes(claims: Record<string, unknown>): Uint8Array {
  return utf8(canonicalJson(claims));
}

export function flipBit(bytes: Uint8Array, offset: number, bit = 0): Uint8Array {
  const out = bytes.slice();
  out[offset] = (out[offset] as number) ^ (1 << bit);
  return out;
}

/** Claims JSON exactly as the signer lays it out (canonical key order) by `kp` at `now`, with `sub` spelt by hand. */
export function claimsJsonWithSub(kp: KeyPair, now: number, subJson: string): string {
  return (
    `{"act":"fs.read","args":"${'A'.repeat(43)}","eid":"e-1","exp":${now + 30_000},"iat":${now},` +
    `"iss":"kavach","jti":"${'j'.repeat(22)}","kid":"${kp.kid}","knd":"agent","sub":${subJson},"v":1}`
  );
}

/** What `p` rejects with (undefined if it resolves). */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Expects `promise` to reject with an error whose `code` is one of `codes`. */
export async function rejectsWith(promise: Promise<unknown>, ...codes: string[]): Promise<void> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  expect(error, `expected a rejection with ${codes.join(' or ')}`).toBeDefined();
  expect(codes).toContain((error as { code?: string }).code);
}

export function throwsWith(fn: () => unknown, ...codes: string[]): void {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(error, `expected a throw with ${codes.join(' or ')}`).toBeDefined();
  expect(codes).toContain((error as { code?: string }).code);
}

export function keys(...pairs: KeyPair[]): PublicKeyBundle[] {
  return pairs.map((kp) => kp.publicKeys());
}

/**
 * Bit flips across a hybrid signature envelope (header, key id, ML-DSA-65, Ed25519) and the code
 * each must give: [what is hit, byte offset, expected PermitError code].
 */
export const ENVELOPE_FLIPS: [string, number, 'BAD_FORMAT' | 'BAD_SIGNATURE'][] = [
  ['version byte', 0, 'BAD_FORMAT'],
  ['mode byte', 1, 'BAD_FORMAT'],
  ['key id', 5, 'BAD_SIGNATURE'],
  ['first ML-DSA byte', 18, 'BAD_SIGNATURE'],
  ['middle of ML-DSA', 1700, 'BAD_SIGNATURE'],
  ['last ML-DSA byte', 18 + 3308, 'BAD_SIGNATURE'],
  ['first Ed25519 byte', 18 + 3309, 'BAD_SIGNATURE'],
  ['last Ed25519 byte', 18 + 3309 + 63, 'BAD_SIGNATURE'],
];
