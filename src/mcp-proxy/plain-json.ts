/**
 * Whether a JSON text may be passed on as it is, in place of a re-encoding of what JSON.parse made
 * of it: true when every reader gets from the text what JSON.parse gave the proxy (so the gate
 * judged, and the screens read, what the far side will act on):
 * - no object in the text repeats a key (parsers differ on which one wins: first-wins would let
 *   `{"path":"/safe","path":"/etc"}` be judged on one path and run on the other);
 * - every number is written as JSON.stringify would write it (`9007199254740993`, `1e400`, `-0`
 *   or `1.0`, which JSON.parse read as another value, are re-encoded);
 * - no line break stands between tokens (a reader that splits its input into lines, at a bare CR
 *   too, would take one message for several: a second message nobody checked).
 * String escapes decode alike in every conforming parser and a lone surrogate escape is one in a
 * re-encoding too, so strings are taken as written. Used for large lines only
 * (`PLAIN_MIN_CHARS`): a small one costs less to re-encode than to check.
 */

/** Lines shorter than this are re-encoded (the walk below would cost about what it saves). */
export const PLAIN_MIN_CHARS = 16 * 1024;

/** A plain line: where its message's `params.arguments` object is, when it has one. */
export interface PlainLine {
  arguments?: [number, number];
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;

/** What an object in the line is: the message, its params, the arguments, or any other. */
enum Role {
  Other = 0,
  Message = 1,
  Params = 2,
  Arguments = 3,
}

/**
 * Checks `line`, a line JSON.parse took, against the rules above: undefined when it fails one,
 * else where its `params.arguments` object starts and ends, if it has one. One pass: strings are
 * skipped with `indexOf`, everything else is read a character at a time.
 */
export function scanPlainJson(line: string): PlainLine | undefined {
  const keys: (Set<string> | null)[] = [];
  const roles: Role[] = [];
  let nextRole = Role.Message;
  let expectKey = false;
  let start = -1;
  let end = -1;
  const n = line.length;
  let i = 0;
  while (i < n) {
    const c = line.charCodeAt(i);
    if (c === QUOTE) {
      const close = stringEnd(line, i);
      const top = keys.length - 1;
      if (expectKey && top >= 0) {
        const raw = line.slice(i + 1, close - 1);
        const key = raw.includes('\\') ? (JSON.parse(line.slice(i, close)) as string) : raw;
        const seen = keys[top] as Set<string>;
        if (seen.has(key)) return undefined;
        seen.add(key);
        const role = roles[top];
        nextRole =
          role === Role.Message && key === 'params'
            ? Role.Params
            : role === Role.Params && key === 'arguments'
              ? Role.Arguments
              : Role.Other;
        expectKey = false;
      } else nextRole = Role.Other;
      i = close;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const object = c === OPEN_OBJECT;
      const role = object ? nextRole : Role.Other;
      if (role === Role.Arguments) start = i;
      keys.push(object ? new Set() : null);
      roles.push(role);
      expectKey = object;
      nextRole = Role.Other;
      i++;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      keys.pop();
      if (roles.pop() === Role.Arguments) end = i + 1;
      expectKey = false;
      nextRole = Role.Other;
      i++;
    } else if (c === COMMA) {
      expectKey = keys[keys.length - 1] instanceof Set;
      nextRole = Role.Other;
      i++;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const close = numberEnd(line, i);
      if (!canonicalNumber(line.slice(i, close))) return undefined;
      nextRole = Role.Other;
      i = close;
    } else if (c === CR || c === LF) {
      // JSON whitespace, but a line break to whoever reads by lines (a bare CR too, for Python's
      // and Java's readers): passed on, it would split the message in two. A re-encoding has none.
      return undefined;
    } else i++; // spaces, tabs, ':', and the letters of true, false and null
  }
  return start >= 0 && end > start ? { arguments: [start, end] } : {};
}

/** The index after the string token that starts at `i` (the line is valid JSON: it is closed). */
function stringEnd(line: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = line.indexOf('"', from);
    if (q < 0) return line.length; // unreachable for valid JSON; ends the walk
    let k = q - 1;
    while (line.charCodeAt(k) === BACKSLASH) k--;
    // An even run of backslashes escapes itself, not the quote.
    if ((q - 1 - k) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

function numberEnd(line: string, i: number): number {
  let j = i + 1;
  for (; j < line.length; j++) {
    const c = line.charCodeAt(j);
    // digits, '.', 'e', 'E', '+', '-'
    if (!((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d)) break;
  }
  return j;
}

/** Whether a number token reads as exactly what JSON.stringify writes for its value. */
function canonicalNumber(token: string): boolean {
  return JSON.stringify(Number(token)) === token;
}
