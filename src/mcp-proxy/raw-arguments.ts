/**
 * A client's tools/call arguments forwarded upstream as the text it sent, when that text means
 * exactly what the gate judged: re-encoding 250 KB of arguments costs ~0.5 ms of JSON.stringify
 * and a copy of the whole line, more than the rest of the call.
 *
 * The text is kept only when every reader gets from it what JSON.parse gave the gate:
 * - no object in the line repeats a key (parsers differ on which one wins: first-wins would let
 *   `{"path":"/safe","path":"/etc"}` be judged on one path and run on the other);
 * - every number is written as JSON.stringify would write it (`9007199254740993`, `1e400`, `-0`
 *   or `1.0`, which the gate read as another value, are re-encoded);
 * - no line break stands between tokens (a reader that splits its input into lines, at a bare CR
 *   too, would take one message for several: a second call the gate never saw).
 * String escapes decode alike in every conforming parser and a lone surrogate escape is one in
 * the re-encoding too, so strings are taken as written. Small arguments are always re-encoded:
 * there it costs less than the check.
 */

/** Lines shorter than this are re-encoded (the walk below would cost about what it saves). */
export const RAW_ARGUMENTS_MIN_CHARS = 16 * 1024;

const texts = new WeakMap<object, string>();

/**
 * Notes the text of `message.params.arguments` in `line`, the line `message` was parsed from,
 * when it is plain enough to be forwarded as it is (see above).
 */
export function noteRawArguments(message: { params?: unknown }, line: string): void {
  if (line.length < RAW_ARGUMENTS_MIN_CHARS) return;
  const args = (message.params as { arguments?: unknown } | undefined)?.arguments;
  if (args === null || typeof args !== 'object') return;
  const span = plainArgumentsSpan(line);
  if (span !== undefined) texts.set(args, line.slice(span[0], span[1]));
}

/** The client's text of `args`, when it was noted and may be forwarded as it is. */
export function rawArgumentsOf(args: unknown): string | undefined {
  return args !== null && typeof args === 'object' ? texts.get(args) : undefined;
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
 * Where `params.arguments` (an object) starts and ends in `line`, a line JSON.parse took, or
 * undefined when it is missing, is not an object, or anything in the line fails the checks above.
 * One pass: strings are skipped with `indexOf`, everything else is read a character at a time.
 */
export function plainArgumentsSpan(line: string): [number, number] | undefined {
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
      // JSON whitespace, but a line break to whoever reads the upstream's input by lines (a bare
      // CR too, for Python's and Java's readers): forwarded, it would split the message in two
      // and let a client write a second one the gate never saw. A re-encoding has none.
      return undefined;
    } else i++; // spaces, tabs, ':', and the letters of true, false and null
  }
  return start >= 0 && end > start ? [start, end] : undefined;
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

/**
 * A tools/call request to forward, encoded in pieces with its arguments as the client's text
 * (the pieces are written together, never joined: joining would copy the arguments once more).
 * Undefined when the arguments were not noted: the caller encodes the message as usual.
 */
export function encodeWithRawArguments(message: object): string[] | undefined {
  if (!('method' in message) || message.method !== 'tools/call' || !('params' in message)) return undefined;
  const params = message.params as Record<string, unknown> | undefined;
  const raw = rawArgumentsOf(params?.arguments);
  if (raw === undefined || params === undefined) return undefined;
  const { arguments: _, ...rest } = params;
  // `params` is the message's last member, and `arguments` goes last in it: `…"params":{…}}`.
  const head = JSON.stringify({ ...message, params: rest });
  if (!head.endsWith('}}') || Object.keys(message).at(-1) !== 'params') return undefined;
  const open = head.slice(0, -2);
  return [`${open}${open.endsWith('{') ? '' : ','}"arguments":`, raw, '}}\n'];
}
