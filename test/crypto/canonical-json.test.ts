import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, hashArgs } from '../../src/engine/canonical-json.ts';

/**
 * An independent RFC 8785 reference, written from the RFC's rules (not from the implementation):
 * keys sorted by UTF-16 code units, strings escaped minimally (§3.2.2.2), numbers in ECMAScript
 * form with -0 as 0 (§3.2.2.3), no whitespace.
 */
function reference(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('non-finite');
    return value === 0 ? '0' : value.toString();
  }
  if (typeof value === 'string') return refString(value);
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort(byCodeUnits);
  return `{${keys.map((k) => `${refString(k)}:${reference(obj[k])}`).join(',')}}`;
}

function byCodeUnits(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

const SHORT: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };
function refString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (SHORT[c] !== undefined) out += SHORT[c];
    else if (c < 0x20) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

/** Every high surrogate followed by a low one, every low one preceded by a high one. */
function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/** Strings over all UTF-16 code units, lone surrogates included. */
const anyUnits = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 12 }).map((u) => String.fromCharCode(...u));
const wellFormed = fc.string({ unit: 'grapheme', maxLength: 12 });
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    wellFormed,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(wellFormed, tie('value'), { maxKeys: 5 }),
  ),
})).value;

function shuffleKeys(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v, i) => shuffleKeys(v, seed + i));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  // Deterministic permutation: rotate, then reverse on odd seeds.
  const k = entries.length ? seed % entries.length : 0;
  let order = [...entries.slice(k), ...entries.slice(0, k)];
  if (seed % 2) order = order.reverse();
  // fromEntries defines own properties: an own "__proto__" key stays a key (assignment would set the prototype).
  return Object.fromEntries(order.map(([key, v]) => [key, shuffleKeys(v, seed * 31 + 7)]));
}

describe('canonical JSON follows RFC 8785', () => {
  it('matches the RFC 8785 §3.2.2 sample', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units, not code points (RFC 8785 §3.2.3)', () => {
    const obj = {
      '\u20ac': 'Euro',
      '\r': 'CR',
      '\ufb33': 'Hebrew',
      '1': 'One',
      '\ud83d\ude00': 'Emoji',
      '\u0080': 'Control',
      '\u00f6': 'Umlaut',
    };
    expect(canonicalJson(obj)).toBe('{"\\r":"CR","1":"One","\u0080":"Control","ö":"Umlaut","€":"Euro","😀":"Emoji","דּ":"Hebrew"}');
  });

  it.each([
    [-0, '0'],
    [0, '0'],
    [1e21, '1e+21'],
    [1e20, '100000000000000000000'],
    [5e-324, '5e-324'],
    [1e-7, '1e-7'],
    [0.000001, '0.000001'],
    [Number.MAX_VALUE, '1.7976931348623157e+308'],
    [-1.5, '-1.5'],
    // biome-ignore lint/correctness/noPrecisionLoss: the rounding to 2^53 is what this case pins
    [9007199254740993, '9007199254740992'],
  ])('writes the number %s as %s', (n, text) => {
    expect(canonicalJson(n)).toBe(text);
  });

  it.each([NaN, Infinity, -Infinity])('refuses the non-finite number %s', (n) => {
    expect(() => canonicalJson({ a: n })).toThrow(/non-finite/);
  });

  it('encodes every finite double as ECMAScript does, and it parses back to the same value', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
        const text = canonicalJson(n);
        expect(text).toBe(reference(n));
        expect(JSON.parse(text)).toBe(n === 0 ? 0 : n);
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with the reference encoder on arbitrary JSON values', () => {
    fc.assert(
      fc.property(json, (v) => {
        expect(canonicalJson(v)).toBe(reference(v));
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(json, fc.nat(1000), (v, seed) => {
        expect(canonicalJson(shuffleKeys(v, seed))).toBe(canonicalJson(v));
        expect(hashArgs(shuffleKeys(v, seed))).toBe(hashArgs(v));
      }),
      { numRuns: 300 },
    );
  });

  it('is a fixed point: parsing and re-encoding changes nothing', () => {
    fc.assert(
      fc.property(json, (v) => {
        const once = canonicalJson(v);
        expect(canonicalJson(JSON.parse(once))).toBe(once);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses exactly the strings that are not well-formed UTF-16 (lone surrogates), as values and as keys', () => {
    fc.assert(
      fc.property(anyUnits, (s) => {
        const ok = isWellFormed(s);
        if (ok) {
          expect(canonicalJson(s)).toBe(refString(s));
          expect(canonicalJson({ [s]: 1 })).toBe(`{${refString(s)}:1}`);
        } else {
          expect(() => canonicalJson(s)).toThrow(/lone surrogate/);
          expect(() => canonicalJson({ [s]: 1 })).toThrow(/lone surrogate/);
        }
      }),
      { numRuns: 500 },
    );
    expect(() => canonicalJson('\ud800')).toThrow();
    expect(() => canonicalJson('a\udc00b')).toThrow();
    expect(canonicalJson('\ud83d\ude00')).toBe('"😀"');
  });

  it('escapes control characters minimally, with lowercase hex', () => {
    expect(canonicalJson('\u0000\u001f\u007f\b\t\n\f\r"\\/')).toBe('"\\u0000\\u001f\u007f\\b\\t\\n\\f\\r\\"\\\\/"');
  });

  it('hashes argument objects that differ only in key order equally, and different values differently', () => {
    expect(hashArgs({ b: 1, a: { y: [1, 2], x: 'z' } })).toBe(hashArgs({ a: { x: 'z', y: [1, 2] }, b: 1 }));
    expect(hashArgs({ a: [1, 2] })).not.toBe(hashArgs({ a: [2, 1] }));
    expect(hashArgs({ a: 1 })).not.toBe(hashArgs({ a: '1' }));
    expect(hashArgs({ a: -0 })).toBe(hashArgs({ a: 0 }));
    expect(hashArgs(undefined)).toBe(hashArgs({}));
  });

  it('refuses values JSON cannot carry faithfully', () => {
    expect(() => canonicalJson({ a: 1n })).toThrow();
    expect(() => canonicalJson(new Date(0))).toThrow();
    expect(() => canonicalJson({ a: new Map() })).toThrow();
  });
});
