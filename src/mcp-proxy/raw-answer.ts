import { PLAIN_MIN_CHARS, scanPlainJson } from './plain-json.ts';

/**
 * An upstream's tools/call answer forwarded as the bytes it sent, with only the id changed:
 * re-encoding a large result costs more than the rest of the call (~750 µs for 245 KB). The line
 * is kept beside the parsed result (which is what is checked, gated and recorded) and used only
 * while nothing about the result has changed — any rule that touches it (`_meta`, screening,
 * observe mode) forgets the line and the result is encoded as usual.
 */
interface RawLine {
  text: string;
  /** Where the upstream's id value starts and ends in `text`. */
  idStart: number;
  idEnd: number;
}

const lines = new WeakMap<object, RawLine>();

/**
 * Keeps `line` as the encoding of `result`, the answer to upstream request `id`, when it is large
 * and plain enough to be passed on as it is (plain-json.ts: no repeated key, as a client that takes
 * the first of two would read another id or result than the proxy checked; no number read as
 * another value; no line break, behind which a server could slip a message of its own to a client
 * that splits at a bare CR), with the id as the last or the first member (so it is found by
 * position, never by searching the result), no `\u` escapes and no mention of Kavach's `_meta`
 * keys. A small answer is re-encoded: that costs less than the check.
 */
export function keepRawAnswer(result: object, line: string, id: string): void {
  if (line.length < PLAIN_MIN_CHARS || line.includes('\\u') || line.includes('dev.kavach') || scanPlainJson(line) === undefined) return;
  const value = JSON.stringify(id);
  const tail = `,"id":${value}}`;
  if (line.endsWith(tail)) {
    const idEnd = line.length - 1;
    lines.set(result, { text: line, idStart: idEnd - value.length, idEnd });
    return;
  }
  for (const head of HEADS) {
    const prefix = `${head}${value},`;
    if (line.startsWith(prefix)) {
      lines.set(result, { text: line, idStart: head.length, idEnd: prefix.length - 1 });
      return;
    }
  }
}

const HEADS = ['{"jsonrpc":"2.0","id":', '{"id":'];

/** The result's line is no longer what the client must get. */
export function forgetRawAnswer(result: object): void {
  lines.delete(result);
}

/**
 * The upstream's line for `result` with the client's id in place of the upstream's, if kept: in
 * pieces (before the id, the id, after it), which a writer may send without joining them.
 */
export function rawAnswer(result: unknown, id: string | number): [string, string, string] | undefined {
  if (result === null || typeof result !== 'object') return undefined;
  const raw = lines.get(result);
  if (raw === undefined) return undefined;
  return [raw.text.slice(0, raw.idStart), JSON.stringify(id), raw.text.slice(raw.idEnd)];
}

const received = new WeakMap<object, string>();

/**
 * The stdio upstream transport notes the line each answer came in, for `lineOf`: only a line
 * large enough to be kept (`keepRawAnswer`), since a WeakMap entry per small answer costs more
 * than its re-encoding saves.
 */
export function noteLine(message: object, line: string): void {
  if (line.length >= PLAIN_MIN_CHARS) received.set(message, line);
}

/** The line an upstream's message came in, when its transport noted it. */
export function lineOf(message: object): string | undefined {
  return received.get(message);
}
