/**
 * A client's tools/call arguments forwarded upstream as the text it sent, when that text means
 * exactly what the gate judged (plain-json.ts): re-encoding 250 KB of arguments costs ~0.5 ms of
 * JSON.stringify and a copy of the whole line, more than the rest of the call.
 */
import { PLAIN_MIN_CHARS, scanPlainJson } from './plain-json.ts';

const texts = new WeakMap<object, string>();

/**
 * Notes the text of `message.params.arguments` in `line`, the line `message` was parsed from,
 * when it is plain enough to be forwarded as it is.
 */
export function noteRawArguments(message: { params?: unknown }, line: string): void {
  if (line.length < PLAIN_MIN_CHARS) return;
  const args = (message.params as { arguments?: unknown } | undefined)?.arguments;
  if (args === null || typeof args !== 'object') return;
  const span = scanPlainJson(line)?.arguments;
  if (span !== undefined) texts.set(args, line.slice(span[0], span[1]));
}

/** The client's text of `args`, when it was noted and may be forwarded as it is. */
export function rawArgumentsOf(args: unknown): string | undefined {
  return args !== null && typeof args === 'object' ? texts.get(args) : undefined;
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
