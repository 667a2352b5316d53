import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { z } from 'zod';
import type { InvalidationBus, InvalidationMessage } from '../engine/invalidation.ts';
import type { OnWarning } from '../engine/warnings.ts';
import { Connection, onceLogger, quit, redactUrl, type RedisClientOrUrl, type RedisStoreOptions } from './connection.ts';
import { KEY_TAGS } from './keys.ts';
import type { BusSigner, BusVerifier } from './signing.ts';

export interface RedisInvalidationBusOptions extends RedisStoreOptions {
  /** Signs what this replica publishes. */
  signer: BusSigner;
  /** Verifies what arrives; a message that does not verify is dropped. */
  verifier: BusVerifier;
  /** A message whose `at` is older than this is stale and dropped (default 30 s). */
  maxAgeMs?: number;
  /** How far in the future `at` may be (clock skew between replicas; default 5 s). */
  maxSkewMs?: number;
  /** The clock staleness is judged by; pass the gate's clock (default Date.now). */
  clock?: () => number;
  /** Told about each dropped message (besides the rate-limited `onWarning` line). */
  onDropped?: (reason: string) => void;
}

const scopeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('session'), sessionId: z.string() }),
  z.strictObject({ type: z.literal('principal'), principalId: z.string() }),
  z.strictObject({ type: z.literal('global') }),
]);

/** What is signed: the message plus the channel it is for and a unique id. */
const payloadSchema = z.strictObject({
  v: z.literal(1),
  ch: z.string(),
  id: z.string(),
  scope: scopeSchema,
  reason: z.string().max(4096),
  at: z.number().refine(Number.isFinite),
  origin: z.string().max(200),
});

/** On the wire: the payload's exact JSON text and its signature, so no re-canonicalisation is needed. */
const wireSchema = z.strictObject({ p: z.string().max(16_384), sig: z.string().max(8_192) });

/**
 * Invalidations between replicas over Redis pub/sub. Every message is signed by the publishing
 * replica and verified by each subscriber; unsigned, forged, malformed, foreign-channel and stale
 * messages are dropped and logged. The subscriber connection reconnects and resubscribes by itself.
 *
 * Pub/sub is at-most-once: a replica disconnected while a message was published never sees it.
 * Share a RedisSessionStore as well (the invalidation is then stored, not only announced).
 */
export class RedisInvalidationBus implements InvalidationBus {
  private readonly conn: Connection;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private readonly handlers = new Set<(message: InvalidationMessage) => void>();
  private readonly signer: BusSigner;
  private readonly verifier: BusVerifier;
  private readonly maxAgeMs: number;
  private readonly maxSkewMs: number;
  private readonly clock: () => number;
  private readonly onDropped: ((reason: string) => void) | undefined;
  private readonly warn: OnWarning;
  private readonly dropLog: (message: string) => void;
  private readonly ready: Promise<void>;
  /** Ids of messages accepted and still fresh (id -> at): a copy replayed within maxAgeMs is dropped. */
  private readonly seen = new Map<string, number>();
  private closed = false;

  constructor(clientOrUrl: RedisClientOrUrl, opts: RedisInvalidationBusOptions) {
    if (!opts || typeof opts.signer?.sign !== 'function' || typeof opts.verifier?.verify !== 'function') {
      throw new TypeError('RedisInvalidationBus needs a signer and a verifier: every message is signed and verified');
    }
    // NaN would switch both checks off (every comparison false) and empty the replay memory.
    const maxAge = opts.maxAgeMs ?? 30_000;
    const maxSkew = opts.maxSkewMs ?? 5_000;
    if (!Number.isFinite(maxAge) || maxAge <= 0) throw new TypeError('maxAgeMs must be a positive number');
    if (!Number.isFinite(maxSkew) || maxSkew < 0) throw new TypeError('maxSkewMs must be a number >= 0');
    this.conn = new Connection(clientOrUrl, opts);
    this.warn = this.conn.warn;
    this.dropLog = rateLimitedLog(this.warn);
    this.channel = this.conn.prefix + KEY_TAGS.channel;
    this.signer = opts.signer;
    this.verifier = opts.verifier;
    this.maxAgeMs = maxAge;
    this.maxSkewMs = maxSkew;
    this.clock = opts.clock ?? Date.now;
    this.onDropped = opts.onDropped;
    // Subscribing is not on the request path: this connection may wait and retry forever.
    const subscriberOptions = { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true, commandTimeout: undefined };
    this.subscriber =
      typeof clientOrUrl === 'string'
        ? new Redis(clientOrUrl, { ...opts.redisOptions, ...subscriberOptions, retryStrategy: (n: number) => Math.min(50 * n, 500) })
        : clientOrUrl.duplicate(subscriberOptions);
    this.subscriber.on(
      'error',
      onceLogger(`redis bus subscriber ${typeof clientOrUrl === 'string' ? redactUrl(clientOrUrl) : ''}`.trim(), this.warn),
    );
    this.subscriber.on('message', (channel: string, text: string) => {
      if (channel === this.channel) void this.receive(text);
    });
    this.ready = this.subscriber.subscribe(this.channel).then(
      () => undefined,
      (err: unknown) => {
        if (!this.closed) this.warn(`redis bus could not subscribe: ${String(err)}`);
      },
    );
  }

  /** Resolves once the subscription is in place (useful at startup and in tests). */
  async whenSubscribed(): Promise<void> {
    await this.ready;
  }

  async publish(message: InvalidationMessage): Promise<void> {
    const payload = JSON.stringify({
      v: 1,
      ch: this.channel,
      id: randomUUID(),
      scope: message.scope,
      reason: message.reason,
      at: message.at,
      origin: message.origin,
    });
    const sig = await this.signer.sign(Buffer.from(payload, 'utf8'));
    const wire = JSON.stringify({ p: payload, sig });
    await this.conn.run((client) => client.publish(this.channel, wire));
  }

  subscribe(handler: (message: InvalidationMessage) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    await quit(this.subscriber);
    await this.conn.close();
  }

  private async receive(text: string): Promise<void> {
    let message: InvalidationMessage;
    try {
      message = await this.open(text);
    } catch (err) {
      const reason = (err as Error)?.message ?? String(err);
      this.dropLog(`dropped an invalidation message from redis: ${reason}`);
      this.onDropped?.(reason);
      return;
    }
    for (const handler of [...this.handlers]) {
      try {
        handler(structuredClone(message));
      } catch (err) {
        this.warn(`invalidation subscriber failed: ${String(err)}`);
      }
    }
  }

  /**
   * Ids older than maxAgeMs can go: a copy of such a message is refused as stale anyway. Oldest
   * first (arrival order); stops at the first fresh one, so each call costs what it removes.
   */
  private forgetStale(now: number): void {
    for (const [id, at] of this.seen) {
      if (now - at <= this.maxAgeMs) break;
      this.seen.delete(id);
    }
  }

  /** Checks, in order of cost: shape, signature, then what the signed payload says. */
  private async open(text: string): Promise<InvalidationMessage> {
    let wire: z.infer<typeof wireSchema>;
    try {
      wire = wireSchema.parse(JSON.parse(text));
    } catch {
      throw new Error('not a signed message');
    }
    try {
      await this.verifier.verify(Buffer.from(wire.p, 'utf8'), wire.sig);
    } catch (err) {
      throw new Error(`signature rejected: ${(err as Error)?.message ?? String(err)}`);
    }
    const parsed = payloadSchema.safeParse(safeJson(wire.p));
    if (!parsed.success) throw new Error('malformed payload');
    const p = parsed.data;
    if (p.ch !== this.channel) throw new Error(`signed for another channel (${p.ch})`);
    const now = this.clock();
    if (now - p.at > this.maxAgeMs) throw new Error(`stale: sent ${Math.round(now - p.at)} ms ago`);
    if (p.at - now > this.maxSkewMs) throw new Error(`dated ${Math.round(p.at - now)} ms in the future`);
    // Checked and remembered with no await in between: two copies arriving together cannot both pass.
    if (this.seen.has(p.id)) throw new Error(`replayed (message ${p.id} was already applied)`);
    this.forgetStale(now);
    this.seen.set(p.id, p.at);
    return { scope: p.scope, reason: p.reason, at: p.at, origin: p.origin };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A flood of forged messages must not flood the log: at most one warning a second, with a count. */
function rateLimitedLog(warn: OnWarning): (message: string) => void {
  let lastAt = 0;
  let suppressed = 0;
  return (message) => {
    const now = Date.now();
    if (now - lastAt < 1_000) {
      suppressed++;
      return;
    }
    lastAt = now;
    if (suppressed > 0) warn(`(${suppressed} more dropped invalidation messages not shown)`);
    suppressed = 0;
    warn(message);
  };
}
