/** Byte helpers shared by the crypto modules. Decoding is strict: one string, one byte sequence. */

const B64URL = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * Strict base64url: alphabet only, no padding, and canonical (unused trailing bits zero), so a
 * token has exactly one spelling. Returns undefined for anything else.
 */
export function fromBase64Url(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || !B64URL.test(text) || text.length % 4 === 1) return undefined;
  const buf = Buffer.from(text, 'base64url');
  if (buf.toString('base64url') !== text) return undefined;
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

const UTF8 = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return UTF8.encode(text);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 decode that throws on malformed input instead of substituting U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string {
  return STRICT_UTF8.decode(bytes);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

export function writeU64(view: DataView, at: number, value: number): void {
  view.setBigUint64(at, BigInt(value));
}

/** Reads a u64 that must fit a JS safe integer (times in ms do). */
export function readU64(view: DataView, at: number): number | undefined {
  const v = view.getBigUint64(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
}
