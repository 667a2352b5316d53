import type { ServerResponse } from 'node:http';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ToolCallReply } from './fast-path.ts';
import { rawAnswer } from './raw-answer.ts';

/** A call not answered within this long gets its response as an event stream, so bytes flow while it waits. */
export const STREAM_AFTER_MS = 1_000;
/** How often a waiting event stream gets a comment line, as the SDK's transport does. */
export const KEEPALIVE_MS = 15_000;

const SSE_HEAD = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/**
 * The HTTP response of one POSTed tools/call served by the fast path. The answer goes as one
 * JSON body (the client accepts both, and one body is the cheapest) unless something must come
 * before it — a progress notification, or nothing at all for `STREAM_AFTER_MS` — and then the
 * response becomes an event stream (SSE), as the SDK's transport answers.
 */
export class HttpReply implements ToolCallReply {
  /** When the call came in; the sweep streams and keeps alive from it. */
  readonly started: number;
  private streaming = false;
  private lastWrite: number;

  constructor(
    private readonly res: ServerResponse,
    private readonly sessionId: string,
    private readonly pending: Set<HttpReply>,
    now: number,
  ) {
    this.started = now;
    this.lastWrite = now;
    pending.add(this);
  }

  answer(message: JSONRPCMessage): Promise<void> {
    this.pending.delete(this);
    const res = this.res;
    if (res.destroyed || res.writableEnded) return Promise.resolve();
    let text: string;
    try {
      text = encodeAnswer(message);
    } catch (err) {
      // Nested deeper than JSON.stringify goes (JSON.parse takes more): the request still gets an answer.
      text = JSON.stringify({
        jsonrpc: '2.0',
        id: (message as { id: unknown }).id,
        error: { code: -32603, message: `internal error: the answer could not be encoded (${(err as Error).message})` },
      });
    }
    if (this.streaming) {
      res.end(`event: message\ndata: ${text}\n\n`);
      return Promise.resolve();
    }
    res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': this.sessionId, 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return Promise.resolve();
  }

  notify(notification: JSONRPCMessage): Promise<void> {
    const res = this.res;
    if (res.destroyed || res.writableEnded) return Promise.resolve();
    this.stream();
    this.lastWrite = Date.now();
    res.write(`event: message\ndata: ${JSON.stringify(notification)}\n\n`);
    return Promise.resolve();
  }

  abandon(): void {
    this.pending.delete(this);
    if (this.res.destroyed || this.res.writableEnded) return;
    // The client cancelled: an event stream that ends without an answer, as the SDK's would.
    this.stream();
    this.res.end();
  }

  /** The sweep's visit: stream once the call is slow, then keep the stream alive. */
  tick(now: number): void {
    const res = this.res;
    if (res.destroyed || res.writableEnded) {
      this.pending.delete(this);
      return;
    }
    if (!this.streaming) {
      if (now - this.started < STREAM_AFTER_MS) return;
      this.stream();
      this.lastWrite = now;
      return;
    }
    if (now - this.lastWrite >= KEEPALIVE_MS) {
      this.lastWrite = now;
      res.write(': keepalive\n\n');
    }
  }

  private stream(): void {
    if (this.streaming) return;
    this.streaming = true;
    this.res.writeHead(200, { ...SSE_HEAD, 'mcp-session-id': this.sessionId });
    // Headers now, not with the first event: the client learns the call is under way.
    this.res.flushHeaders();
  }
}

/** A result the proxy left as the upstream sent it goes as the upstream's bytes with the client's id. */
function encodeAnswer(message: JSONRPCMessage): string {
  if ('result' in message) {
    const raw = rawAnswer(message.result, message.id);
    if (raw !== undefined) return raw.join('');
  }
  return JSON.stringify(message);
}
