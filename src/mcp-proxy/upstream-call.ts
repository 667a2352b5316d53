import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CallToolResultSchema, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isTooLargeAnswer } from './line-transport.ts';
import { keepRawAnswer, lineOf } from './raw-answer.ts';

/**
 * A call failure the proxy itself saw (the server went away, its answer was too large to read):
 * its message is the proxy's words, never text the server chose, so it may go in the audit log.
 */
export class UpstreamFault extends Error {
  override name = 'UpstreamFault';
}

/**
 * What a forwarded call needs of a cancellation signal: an `AbortSignal` fits, and so does the
 * fast path's lighter one (an AbortController per call costs more than the rest of the call).
 */
export interface CallSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

interface PendingCall {
  resolve(result: unknown, line: string | undefined): void;
  reject(err: Error): void;
}

/** The longest a sweep of call deadlines waits; shorter for short timeouts (a tenth of one, at least 10 ms). */
const MAX_SWEEP_MS = 1_000;

/**
 * The raw upstream side of the hot path, the counterpart of `fast-path.ts` downstream: tools/call
 * forwarded as plain JSON-RPC on the upstream connection, beside the SDK client (string ids never
 * collide with its numeric ones). This skips the client's per-request bookkeeping; the result is
 * still schema-checked. Progress of forwarded requests is read here too.
 */
export class UpstreamCallPath {
  private transport: Transport | undefined;
  /** Forwarded tools/call requests, by their (string) id on the upstream connection. */
  private readonly pending = new Map<string, PendingCall>();
  /** The same calls, for the deadline sweep (one timer for all, not one per call). */
  private readonly deadlines = new Set<ForwardedCall>();
  private sweeper: NodeJS.Timeout | undefined;
  private sweepMs = MAX_SWEEP_MS;
  private callSeq = 0;
  private readonly progress = new Map<string, (params: Record<string, unknown>) => void>();
  private progressSeq = 0;
  /** Forwarded calls the server answered (with a result) since the count was last reset. */
  answered = 0;

  constructor(
    private readonly server: string,
    /** The config key that sets the message size limit, named when an answer is over it. */
    private readonly limitKey: string,
  ) {}

  /**
   * Takes the messages of a connected transport that belong here (answers to forwarded calls,
   * progress of forwarded requests) before the SDK client sees them; the rest go on to it.
   */
  attach(transport: Transport): void {
    const deliver = transport.onmessage;
    transport.onmessage = (message, extra) => {
      if ('method' in message) {
        if (message.method === 'notifications/progress' && !('id' in message)) {
          const params = (message.params ?? {}) as Record<string, unknown>;
          const handler = this.progress.get(params.progressToken as string);
          if (handler) handler(params);
          return;
        }
      } else if ('id' in message && typeof message.id === 'string') {
        const call = this.pending.get(message.id);
        if (call) {
          if ('result' in message) {
            this.answered++;
            call.resolve(message.result, lineOf(message));
          } else if ('error' in message)
            call.reject(
              isTooLargeAnswer(message)
                ? new UpstreamFault(`${message.error.message} (${this.limitKey}); the server keeps running`)
                : new McpError(message.error.code, message.error.message, message.error.data),
            );
          return;
        }
      }
      deliver?.(message, extra);
    };
    this.transport = transport;
  }

  /** The connection is gone: no new calls, and every call in flight fails with `reason`. */
  detach(reason: string): void {
    this.transport = undefined;
    for (const call of [...this.pending.values()]) call.reject(new UpstreamFault(reason));
  }

  /**
   * A progress token for one forwarded request. The SDK dispatches notifications a microtask
   * after responses, so a final progress arriving with the result would be dropped; reading it
   * off the transport keeps every update in order.
   */
  trackProgress(onProgress: (params: Record<string, unknown>) => void): string {
    const token = `kavach-${++this.progressSeq}`;
    this.progress.set(token, onProgress);
    return token;
  }

  untrackProgress(token: string): void {
    this.progress.delete(token);
  }

  /** Forwards one tools/call; the caller has checked that the upstream is ready. */
  callTool(params: Record<string, unknown>, opts: { signal: CallSignal; timeoutMs: number }): Promise<CallToolResult> {
    const transport = this.transport;
    if (!transport) return Promise.reject(new Error(`server '${this.server}' is unavailable`));
    if (opts.signal.aborted) return Promise.reject(new Error('the call was cancelled'));
    const id = `kavach-call-${++this.callSeq}`;
    const call = new ForwardedCall(id, this.server, this.pending, this.deadlines, transport, opts.signal, opts.timeoutMs);
    this.sweepWithin(opts.timeoutMs);
    try {
      transport.send({ jsonrpc: '2.0', id, method: 'tools/call', params }).catch(call.sendFailed);
    } catch (err) {
      // The line transports serialise before they return a promise: a message JSON.stringify cannot
      // take (nesting JSON.parse accepted) throws here. Left pending, the call would time out later
      // with nobody awaiting it, an unhandled rejection that ends the process.
      call.sendFailed(err);
    }
    return call.promise;
  }

  /**
   * Keeps the deadline sweep running while calls are out: a call times out within a tenth of its
   * timeout (at most a second) after its deadline. The sweep stops when it finds nothing to watch.
   */
  private sweepWithin(timeoutMs: number): void {
    const every = Math.max(10, Math.min(MAX_SWEEP_MS, Math.floor(timeoutMs / 10)));
    if (this.sweeper !== undefined && every >= this.sweepMs) return;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweepMs = every;
    this.sweeper = setInterval(sweep, every, this);
    this.sweeper.unref();
  }

  /** @internal the sweep's visit */
  sweep(now: number): void {
    if (this.deadlines.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      this.sweepMs = MAX_SWEEP_MS;
      return;
    }
    for (const call of this.deadlines) if (call.deadline <= now) call.timedOut();
  }
}

function sweep(path: UpstreamCallPath): void {
  path.sweep(performance.now());
}

/**
 * One forwarded tools/call awaiting its answer: its timeout, its cancellation and its settling in
 * one object (a closure per step would be allocated, and under tsx named, on every call).
 */
class ForwardedCall implements PendingCall {
  readonly promise: Promise<CallToolResult>;
  readonly sendFailed: (err: unknown) => void;
  /** When the call times out (performance.now() time), for the sweep. */
  readonly deadline: number;
  private readonly onAbort: () => void;
  private settle!: (result: CallToolResult) => void;
  private fail!: (err: Error) => void;

  constructor(
    private readonly id: string,
    private readonly server: string,
    private readonly pending: Map<string, PendingCall>,
    private readonly deadlines: Set<ForwardedCall>,
    private readonly transport: Transport,
    private readonly signal: CallSignal,
    private readonly timeoutMs: number,
  ) {
    this.promise = new Promise<CallToolResult>((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
    });
    this.onAbort = () => {
      this.finish();
      this.cancelUpstream(String(this.signal.reason ?? 'cancelled by the client'));
      this.fail(new Error('the call was cancelled'));
    };
    this.sendFailed = (err) => this.pending.get(this.id)?.reject(err as Error);
    this.deadline = performance.now() + timeoutMs;
    signal.addEventListener('abort', this.onAbort, { once: true });
    pending.set(id, this);
    deadlines.add(this);
  }

  resolve(result: unknown, line: string | undefined): void {
    this.finish();
    if (!isPlainTextResult(result)) {
      const parsed = CallToolResultSchema.safeParse(result);
      if (!parsed.success) {
        this.fail(new Error(`'${this.server}' returned an invalid tools/call result: ${parsed.error.message}`));
        return;
      }
    }
    if (line !== undefined) keepRawAnswer(result as object, line, this.id);
    this.settle(result as CallToolResult);
  }

  reject(err: Error): void {
    this.finish();
    this.fail(err);
  }

  timedOut(): void {
    this.finish();
    this.cancelUpstream('timed out');
    // The proxy's own words: the outcome record keeps them (an upstream's error text it does not).
    this.fail(new UpstreamFault(`no answer from '${this.server}' within ${this.timeoutMs} ms`));
  }

  private finish(): void {
    this.pending.delete(this.id);
    this.deadlines.delete(this);
    this.signal.removeEventListener('abort', this.onAbort);
  }

  private cancelUpstream(reason: string): void {
    this.transport
      .send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: this.id, reason } })
      .catch(() => undefined);
  }
}

/**
 * The commonest result, text blocks only (`{ content: [{ type: 'text', text }], isError? }`),
 * checked by hand: a strict subset of what `CallToolResultSchema` accepts. Anything else, even
 * a text block with annotations, goes through the full schema.
 */
export function isPlainTextResult(result: unknown): boolean {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return false;
  const r = result as Record<string, unknown>;
  for (const k in r) if (k !== 'content' && k !== 'isError') return false;
  if (r.isError !== undefined && typeof r.isError !== 'boolean') return false;
  const content = r.content;
  if (!Array.isArray(content)) return false;
  for (const block of content as unknown[]) {
    if (block === null || typeof block !== 'object' || Array.isArray(block)) return false;
    const b = block as Record<string, unknown>;
    if (b.type !== 'text' || typeof b.text !== 'string') return false;
    for (const k in b) if (k !== 'type' && k !== 'text') return false;
  }
  return true;
}
