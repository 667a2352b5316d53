/**
 * Secrets written in base64 (DESIGN §13 screens): a model decodes `QVdTX0tFWT1BS0lB…` as readily
 * as it reads it. Finds the runs of a text that may be encoded text and decodes them; the walk
 * (screen-output.ts) lets the detectors read what decodes to text.
 */

/**
 * A run of base64 (standard or URL-safe alphabet) long enough to hold a secret worth decoding:
 * 24 characters are 18 bytes, shorter than any detector's shortest match once decoded.
 */
export const MIN_ENCODED_RUN = 24;
/** Longer runs are files or images, not a secret someone encoded: not decoded. */
const MAX_ENCODED_RUN = 256 * 1024;
/** Characters of base64 decoded per text at most: a megabyte of noise costs a millisecond or two. */
export const MAX_DECODED_CHARS = 1024 * 1024;

/** 1 for the characters of either base64 alphabet (`A–Z a–z 0–9 + / - _`). */
const BASE64_CHAR = new Uint8Array(128);
/**
 * 1 for the characters that begin a 4-character group of encoded printable ASCII (the first
 * byte's top six bits, 8–31: `I–Z a–f`). Paths, hex and identifiers rarely have them at every
 * fourth place; encoded text always has.
 */
const TEXT_LEAD = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') BASE64_CHAR[c.charCodeAt(0)] = 1;
for (const c of 'IJKLMNOPQRSTUVWXYZabcdef') TEXT_LEAD[c.charCodeAt(0)] = 1;

/**
 * The runs of `text` that may be encoded text, as `[start, end, start, end, …]` (trailing `=`
 * padding included): at least MIN_ENCODED_RUN base64 characters, at most MAX_ENCODED_RUN, and
 * three in four of their first sixteen groups led as encoded ASCII is. Only every
 * MIN_ENCODED_RUN-th character is looked at first (a run that long covers one of them), and a run
 * is followed out from there: prose costs a fraction of a full pass, and a regex backtracking over
 * every shorter run cost more than the detectors.
 */
export function encodedRuns(text: string): number[] | undefined {
  let runs: number[] | undefined;
  const n = text.length;
  let i = MIN_ENCODED_RUN - 1;
  while (i < n) {
    if (!isBase64Char(text.charCodeAt(i))) {
      i += MIN_ENCODED_RUN;
      continue;
    }
    let start = i;
    while (start > 0 && isBase64Char(text.charCodeAt(start - 1))) start--;
    let end = i + 1;
    while (end < n && isBase64Char(text.charCodeAt(end))) end++;
    if (end - start >= MIN_ENCODED_RUN) runs = withRun(runs, text, start, end);
    // The next run starts after `end`: if it is long enough, it covers this checkpoint.
    i = end + MIN_ENCODED_RUN;
  }
  return runs;
}

function isBase64Char(c: number): boolean {
  return c < 128 && BASE64_CHAR[c] === 1;
}

/** `runs` with `[start, end)` (and its `=` padding) added when it may be encoded text. */
function withRun(runs: number[] | undefined, text: string, start: number, end: number): number[] | undefined {
  if (end - start > MAX_ENCODED_RUN || !ledAsText(text, start, end)) return runs;
  let padded = end;
  while (padded < text.length && padded - end < 2 && text.charCodeAt(padded) === 61) padded++;
  (runs ??= []).push(start, padded);
  return runs;
}

function ledAsText(text: string, start: number, end: number): boolean {
  let groups = 0;
  let led = 0;
  for (let i = start; i < end && groups < 16; i += 4, groups++) if (TEXT_LEAD[text.charCodeAt(i)] === 1) led++;
  return led * 4 >= groups * 3;
}

/**
 * The text a base64 run decodes to, or undefined when it decodes to binary: more than one byte
 * in fifty a control character (tabs and line breaks aside), or a byte sequence that is not UTF-8.
 */
export function decodedText(run: string): string | undefined {
  const bytes = Buffer.from(run, 'base64');
  if (bytes.length === 0 || controlsIn(bytes) * 50 > bytes.length) return undefined;
  const text = bytes.toString('utf8');
  return text.includes('\ufffd') ? undefined : text;
}

function controlsIn(bytes: Uint8Array): number {
  let controls = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b === 0x7f) controls++;
  }
  return controls;
}
