/**
 * What detectors read, when a text hides a secret from them: format characters (zero-width
 * spaces and joiners, soft hyphens, bidi marks: `\p{Cf}`) removed and fullwidth ASCII
 * (`ＡＫＩＡ…`) read as ASCII. A model reads such text as the plain secret; a detector matching the
 * raw text would not. Spans found in the folded text map back to the original, the removed
 * characters inside them included, so redaction covers all of it.
 */

/** A format character, or a fullwidth ASCII form (U+FF01–FF5E is U+0021–007E, one for one). */
const FOLD_SOURCE = '\\p{Cf}|[\\uff01-\\uff5e]';
const FOLDABLE = new RegExp(FOLD_SOURCE, 'u');
const FOLD_ALL = new RegExp(FOLD_SOURCE, 'gu');
/**
 * The same without the `u` flag, for the screens' one pass over a text (screen-set.ts): the BMP
 * format characters and fullwidth forms, and the high surrogates of the planes' format characters
 * (a surrogate of anything else there only costs a second look).
 */
export const FOLDABLE_CLASS =
  '[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\uff01-\uff5e\ud804\ud80d\ud82f\ud834\udb40]';
const FULLWIDTH_OFFSET = 0xfee0;

export interface Folded {
  text: string;
  /** The span `[start, end)` of the folded text as a span of the original. */
  back(span: { start: number; end: number }): { start: number; end: number };
}

/**
 * `text` folded for detection, or undefined when there is nothing to fold (the common case).
 * `known` says the caller's own pass already saw (true) or did not see (false) a foldable unit.
 */
export function foldForDetection(text: string, known?: boolean): Folded | undefined {
  if (known === false || !FOLDABLE.test(text)) return undefined;
  // Runs copied one for one: the folded text from `folded` on is the original from `original` on.
  const runs: { folded: number; original: number }[] = [];
  let out = '';
  let last = 0;
  for (const m of text.matchAll(FOLD_ALL)) {
    const i = m.index;
    if (i > last) {
      runs.push({ folded: out.length, original: last });
      out += text.slice(last, i);
    }
    const code = m[0].charCodeAt(0);
    if (code >= 0xff01 && code <= 0xff5e) {
      runs.push({ folded: out.length, original: i });
      out += String.fromCharCode(code - FULLWIDTH_OFFSET);
    }
    last = i + m[0].length;
  }
  if (last < text.length) {
    runs.push({ folded: out.length, original: last });
    out += text.slice(last);
  }
  /** Where folded position `f` (a character of `out`) stands in the original. */
  const original = (f: number): number => {
    let lo = 0;
    let hi = runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((runs[mid] as { folded: number }).folded <= f) lo = mid;
      else hi = mid - 1;
    }
    const run = runs[lo];
    return run === undefined ? text.length : run.original + (f - run.folded);
  };
  return {
    text: out,
    back: ({ start, end }) =>
      end > start ? { start: original(start), end: original(end - 1) + 1 } : { start: original(start), end: original(start) },
  };
}
