/**
 * What a detector is, and the one way regex-based detectors find their matches.
 * Detectors never hand back the matched text: only where it is, so nothing downstream can log it.
 */

/** A half-open range [start, end) of a string. */
export interface Span {
  start: number;
  end: number;
}

export interface Detector {
  readonly name: string;
  /** What the model is told was withheld: "an AWS access key ID". */
  readonly label: string;
  /**
   * Literals one of which every match contains. A text with none of them is not searched: one
   * pass of a combined regex over all anchors replaces a pass per detector.
   */
  readonly anchors?: readonly string[];
  /** Appends the span of every match in `text`, in order, without overlaps. */
  find(text: string, out: Span[]): void;
}

export interface RegexDetectorSpec {
  name: string;
  label: string;
  anchors?: readonly string[];
  /** Each run over the whole text. Must carry the `g` flag (and `d` when `group` is used). */
  regexes: readonly RegExp[];
  /** The capture group that holds the secret (default: the whole match). */
  group?: number;
  /** A match preceded by such a character is part of a longer token, not a secret of this kind. */
  notAfter?: (code: number) => boolean;
  /**
   * Where the secret in the candidate [start, end) really ends (≤ end), or -1 to reject it.
   * Checksums, known lengths and the character after a match are judged here; the regex only
   * finds candidates.
   */
  accept?: (text: string, start: number, end: number) => number;
  /** Characters that continue the secret past the regex's bounded tail (see `extendWhile`). */
  extendWhile?: (code: number) => boolean;
}

/**
 * Builds a detector from regexes. Quantifiers in them stay bounded so that a hostile result (a
 * megabyte of `sk-proj-sk-proj-…`) costs linear time; `extendWhile` then carries a long token to
 * its real end in one pass, after which the scan resumes past it.
 */
export function regexDetector(spec: RegexDetectorSpec): Detector {
  for (const re of spec.regexes) {
    if (!re.global) throw new TypeError(`${spec.name}: detector regexes need the g flag`);
    if (spec.group !== undefined && !re.hasIndices) throw new TypeError(`${spec.name}: a capture group needs the d flag`);
  }
  const { group, notAfter, accept, extendWhile } = spec;
  return {
    name: spec.name,
    label: spec.label,
    ...(spec.anchors ? { anchors: spec.anchors } : {}),
    find(text, out) {
      const before = out.length;
      for (const re of spec.regexes) {
        re.lastIndex = 0;
        let m: RegExpExecArray | null;
        while ((m = re.exec(text)) !== null) {
          let start = m.index;
          let end = start + m[0].length;
          if (group !== undefined) {
            const at = m.indices?.[group];
            if (!at) {
              re.lastIndex = Math.max(re.lastIndex, m.index + 1);
              continue;
            }
            [start, end] = at;
          }
          if (end === start) {
            re.lastIndex = m.index + 1;
            continue;
          }
          let ok = !(notAfter && start > 0 && notAfter(text.charCodeAt(start - 1)) && !endsEscape(text, start - 1));
          if (ok && accept) {
            end = accept(text, start, end);
            ok = end > start;
          }
          if (!ok) {
            // The next candidate may start inside this one (a card number after a stray digit).
            re.lastIndex = m.index + 1;
            continue;
          }
          if (extendWhile) while (end < text.length && extendWhile(text.charCodeAt(end))) end++;
          out.push({ start, end });
          re.lastIndex = Math.max(end, m.index + 1);
        }
      }
      if (spec.regexes.length > 1 && out.length - before > 1) normalise(out, before);
    },
  };
}

/** Sorts and merges the spans from `from` on (several regexes of one detector may overlap). */
function normalise(out: Span[], from: number): void {
  const mine = out.splice(from).sort((a, b) => a.start - b.start || b.end - a.end);
  for (const span of mine) {
    const last = out.length > from ? out[out.length - 1] : undefined;
    if (last && span.start < last.end) last.end = Math.max(last.end, span.end);
    else out.push({ ...span });
  }
}

// Character classes as code tests: cheaper than a regex per character in the hot loops.
export const isDigit = (c: number): boolean => c >= 48 && c <= 57;
export const isUpper = (c: number): boolean => c >= 65 && c <= 90;
export const isLower = (c: number): boolean => c >= 97 && c <= 122;
export const isAlnum = (c: number): boolean => isDigit(c) || isUpper(c) || isLower(c);
/** [A-Za-z0-9_] */
export const isWord = (c: number): boolean => isAlnum(c) || c === 95;
/** [A-Za-z0-9_-]: base64url and most token alphabets. */
export const isTokenChar = (c: number): boolean => isWord(c) || c === 45;

const isHex = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

/**
 * Whether text[i] ends a backslash escape (`\n`, `\t`, `\r`, `\b`, `\f`, `\uXXXX`) of JSON or
 * source text: the `n` of `"line\nAKIA…"` is not part of the key after it, and a boundary check
 * that took it for one would let every secret at the start of an escaped line through.
 */
export function endsEscape(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  let from: number;
  if (c === 110 || c === 116 || c === 114 || c === 98 || c === 102)
    from = i - 1; // n t r b f
  else if (
    isHex(c) &&
    i >= 5 &&
    text.charCodeAt(i - 4) === 117 &&
    isHex(text.charCodeAt(i - 1)) &&
    isHex(text.charCodeAt(i - 2)) &&
    isHex(text.charCodeAt(i - 3))
  )
    from = i - 5;
  else return false;
  let backslashes = 0;
  while (from - backslashes >= 0 && text.charCodeAt(from - backslashes) === 92) backslashes++;
  return backslashes % 2 === 1;
}
