import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** The SDK stdio transports' default limit on one buffered message. */
export const MAX_LINE_BYTES = 10 * 1024 * 1024;

const NEWLINE = 0x0a;

/** How much of an oversize line's start and end is kept, to tell whose answer it was. */
const KEEP_BYTES = 1024;

/** A line refused for its size: how long it was, and its first and last bytes (never the rest). */
export interface OversizeLine {
  bytes: number;
  head: string;
  tail: string;
}

/**
 * Splits a byte stream into newline-delimited lines. Bytes are joined before they are decoded,
 * so a multi-byte UTF-8 character split across chunks survives. A line longer than `maxBytes`
 * is dropped whole and reading resumes after its newline: it is never buffered, only counted and
 * its first and last kilobyte kept, and `onOversize` hears of it once its newline arrives.
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;
  /** Inside a line already refused for its size: discard up to the next newline. */
  private skipping = false;
  private skipped = 0;
  private head: Buffer = Buffer.alloc(0);
  private tail: Buffer = Buffer.alloc(0);

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOversize: (line: OversizeLine) => void,
    private readonly maxBytes: number = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    while (nl !== -1) {
      if (this.skipping) {
        this.skip(chunk.subarray(start, nl));
        this.endSkip();
      } else if (this.size + (nl - start) > this.maxBytes) {
        this.beginSkip(chunk.subarray(start, nl));
        this.endSkip();
      } else if (this.size === 0) {
        this.emit(chunk.toString('utf8', start, nl));
      } else {
        this.parts.push(chunk.subarray(start, nl));
        const line = Buffer.concat(this.parts, this.size + (nl - start)).toString('utf8');
        this.parts = [];
        this.size = 0;
        this.emit(line);
      }
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start >= chunk.length) return;
    const rest = chunk.subarray(start);
    if (this.skipping) this.skip(rest);
    else if (this.size + rest.length > this.maxBytes) this.beginSkip(rest);
    else {
      // A copy: a view would pin the whole (up to 64 KiB) chunk for a few bytes.
      this.parts.push(Buffer.from(rest));
      this.size += rest.length;
    }
  }

  clear(): void {
    this.parts = [];
    this.size = 0;
    this.skipping = false;
    this.skipped = 0;
    this.head = this.tail = Buffer.alloc(0);
  }

  /** The line outgrew the limit with `segment`: what was buffered of it goes, but for its ends. */
  private beginSkip(segment: Buffer): void {
    const seen = [...this.parts, segment];
    this.head = firstBytes(seen, KEEP_BYTES);
    this.tail = lastBytes(seen, KEEP_BYTES);
    this.skipped = this.size + segment.length;
    this.parts = [];
    this.size = 0;
    this.skipping = true;
  }

  private skip(segment: Buffer): void {
    this.skipped += segment.length;
    this.tail = lastBytes([this.tail, segment], KEEP_BYTES);
  }

  private endSkip(): void {
    const line: OversizeLine = { bytes: this.skipped, head: this.head.toString('utf8'), tail: this.tail.toString('utf8') };
    this.clear();
    this.onOversize(line);
  }

  private emit(line: string): void {
    const end = line.length - 1;
    if (end >= 0 && line.charCodeAt(end) === 0x0d) line = line.slice(0, end);
    // Blank lines carry nothing (some servers print them); JSON-RPC has no meaning for them.
    if (line.length === 0 || (line.charCodeAt(0) !== 0x7b && line.trim().length === 0)) return;
    this.onLine(line);
  }
}

/** A copy of the first `n` bytes of `bufs` taken together. */
function firstBytes(bufs: readonly Buffer[], n: number): Buffer {
  const out: Buffer[] = [];
  let size = 0;
  for (const b of bufs) {
    if (size >= n) break;
    const piece = b.subarray(0, n - size);
    out.push(piece);
    size += piece.length;
  }
  return Buffer.concat(out, size);
}

/** A copy of the last `n` bytes of `bufs` taken together. */
function lastBytes(bufs: readonly Buffer[], n: number): Buffer {
  const out: Buffer[] = [];
  let size = 0;
  for (let i = bufs.length - 1; i >= 0 && size < n; i--) {
    const b = bufs[i] as Buffer;
    const piece = b.subarray(Math.max(0, b.length - (n - size)));
    out.unshift(piece);
    size += piece.length;
  }
  return Buffer.concat(out, size);
}

export type RequestId = string | number;

/** A JSON string or number token. */
const SCALAR = String.raw`"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null`;
const ID_TOKEN = String.raw`"(?:[^"\\]|\\.)*"|-?\d+`;
/** The members of the outer object before its first nested value: only scalars, so all are top level. */
const LEADING = new RegExp(String.raw`^\s*\{((?:\s*"(?:[^"\\]|\\.)*"\s*:\s*(?:${SCALAR})\s*,)*)\s*"(\w+)"\s*:`);
const MEMBER = new RegExp(String.raw`"((?:[^"\\]|\\.)*)"\s*:\s*(${SCALAR})`, 'g');
/**
 * `"id": X` as the last member (maybe before `"jsonrpc"`), closing the outer object: the key
 * follows `{` or `,`, never a backslash, so it is not inside a string of valid JSON.
 */
const TRAILING_ID = new RegExp(String.raw`[{,]\s*"id"\s*:\s*(${ID_TOKEN})\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?\}\s*$`);

/**
 * The id of the response an oversize line carried, read off its ends: a response (its first
 * object member is `result` or `error`, after scalar members only) whose id is among its leading
 * members or is its last member. Undefined for a request or notification, or when it cannot tell.
 */
export function oversizeAnswerId(line: OversizeLine): RequestId | undefined {
  const leading = LEADING.exec(line.head);
  if (!leading) return undefined;
  let id: string | undefined;
  for (const m of (leading[1] as string).matchAll(MEMBER)) {
    if (m[1] === 'method') return undefined;
    if (m[1] === 'id') id = m[2];
  }
  const first = leading[2];
  if (first !== 'result' && first !== 'error') return undefined;
  id ??= TRAILING_ID.exec(line.tail)?.[1];
  if (id === undefined) return undefined;
  try {
    const value = JSON.parse(id) as unknown;
    return typeof value === 'string' || Number.isSafeInteger(value) ? (value as RequestId) : undefined;
  } catch {
    return undefined;
  }
}

export type Decoded = { ok: true; message: JSONRPCMessage } | { ok: false; code: -32700 | -32600; reason: string; id: RequestId | null };

const MESSAGE_KEYS = new Set(['jsonrpc', 'id', 'method', 'params', 'result', 'error']);

/**
 * One line to a JSON-RPC message: `JSON.parse` and the structural checks of the SDK's
 * `JSONRPCMessageSchema` (version, id type, method, params/result/error shapes, no unknown
 * top-level keys) without building a zod parse per message. What the message carries is checked
 * by whoever handles it: the SDK `Server`/`Client` schemas, the tools/call fast path.
 */
export function decodeLine(line: string): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, code: -32700, reason: 'Parse error', id: null };
  }
  if (!isObject(value)) return invalid('not a JSON-RPC message object', null);
  const m = value as Record<string, unknown>;
  const id = m.id;
  const idOk = id === undefined || typeof id === 'string' || Number.isInteger(id);
  // Only a request's id is echoed: a bad *response* echoed back could be taken for the answer to
  // one of the peer's own requests (ids are per direction).
  const answerId = idOk && id !== undefined && 'method' in m ? (id as RequestId) : null;
  if (m.jsonrpc !== '2.0') return invalid('jsonrpc must be "2.0"', answerId);
  for (const k in m) if (!MESSAGE_KEYS.has(k)) return invalid(`unknown member "${k}"`, answerId);
  if (!idOk) return invalid('id must be a string or an integer', null);
  if ('method' in m) {
    if (typeof m.method !== 'string') return invalid('method must be a string', answerId);
    if ('result' in m || 'error' in m) return invalid('a request carries no result or error', answerId);
    const params = m.params;
    if (params !== undefined) {
      if (!isObject(params)) return invalid('params must be an object', answerId);
      const meta = (params as Record<string, unknown>)._meta;
      if (meta !== undefined && !metaOk(meta)) return invalid('params._meta is malformed', answerId);
    }
    return { ok: true, message: m as JSONRPCMessage };
  }
  if ('params' in m) return invalid('params without a method', answerId);
  if ('result' in m) {
    if (id === undefined) return invalid('a result needs an id', null);
    if ('error' in m) return invalid('both result and error', answerId);
    const result = m.result;
    if (!isObject(result)) return invalid('result must be an object', answerId);
    const meta = (result as Record<string, unknown>)._meta;
    if (meta !== undefined && !metaOk(meta)) return invalid('result._meta is malformed', answerId);
    return { ok: true, message: m as JSONRPCMessage };
  }
  if ('error' in m) {
    const error = m.error;
    if (!isObject(error)) return invalid('error must be an object', answerId);
    const e = error as Record<string, unknown>;
    if (!Number.isInteger(e.code) || typeof e.message !== 'string')
      return invalid('error needs an integer code and a string message', answerId);
    return { ok: true, message: m as JSONRPCMessage };
  }
  return invalid('neither a request, a notification nor a response', answerId);
}

/** `_meta`: an object whose progressToken, if any, is a string or an integer (as the SDK schema). */
function metaOk(meta: unknown): boolean {
  if (!isObject(meta)) return false;
  const token = (meta as Record<string, unknown>).progressToken;
  return token === undefined || typeof token === 'string' || Number.isInteger(token);
}

function invalid(reason: string, id: RequestId | null): Decoded {
  return { ok: false, code: -32600, reason: `Invalid Request: ${reason}`, id };
}

function isObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** One message, one line: what goes on the wire in a single write. */
export function encodeMessage(message: JSONRPCMessage): string {
  return `${JSON.stringify(message)}\n`;
}
