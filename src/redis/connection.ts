import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../engine/stores.ts';
import { warningSink, type OnWarning } from '../engine/warnings.ts';
import { checkPrefix, DEFAULT_PREFIX } from './keys.ts';

/** An ioredis client, or a URL (`redis://host:port/db`, `rediss://...`) to connect to. */
export type RedisClientOrUrl = Redis | string;

export interface RedisStoreOptions {
  /** Prepended to every key and the bus channel (default `kavach:`); one per deployment sharing a Redis. */
  keyPrefix?: string;
  /** Any command slower than this fails (the gate refuses STORE_UNAVAILABLE). Default 100 ms. */
  commandTimeoutMs?: number;
  /** Extra ioredis options when a URL is given (ours win for the fail-fast ones). */
  redisOptions?: RedisOptions;
  /**
   * Told about connection errors (once per outage) and, on the bus, about messages dropped or
   * not delivered. Default: stderr, since an outage refuses calls and the reason belongs in a log.
   */
  onWarning?: (message: string) => void;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 100;

/**
 * Options for clients we create: a dead Redis must fail a call at once, not queue it for later
 * (a queued charge could land after the gate already answered), and reconnection is automatic
 * and quick so the gate recovers without a restart.
 */
export function failFastOptions(timeoutMs: number, extra: RedisOptions = {}): RedisOptions {
  return {
    ...extra,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // No ioredis commandTimeout: the stores' own deadline (Connection.run) tolerates event-loop stalls.
    connectTimeout: startupWaitMs(timeoutMs),
    retryStrategy: (times: number) => Math.min(50 * times, 500),
    // Never fall back to replaying a half-sent EVALSHA after a reconnect.
    autoResendUnfulfilledCommands: false,
  };
}

function startupWaitMs(timeoutMs: number): number {
  return Math.max(1_000, timeoutMs);
}

/** The command connection a store uses; created from a URL (and then owned) or borrowed. */
export class Connection {
  readonly client: Redis;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly warn: OnWarning;
  private readonly owned: boolean;
  private closed = false;
  private started = false;
  private connecting: Promise<void> | undefined;

  constructor(clientOrUrl: RedisClientOrUrl, opts: RedisStoreOptions = {}) {
    this.prefix = checkPrefix(opts.keyPrefix ?? DEFAULT_PREFIX);
    const timeout = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!Number.isFinite(timeout) || timeout <= 0) throw new TypeError('commandTimeoutMs must be a positive number');
    this.timeoutMs = timeout;
    this.warn = warningSink(opts.onWarning);
    if (typeof clientOrUrl === 'string') {
      this.client = new Redis(clientOrUrl, failFastOptions(timeout, opts.redisOptions));
      this.owned = true;
      // Without a listener ioredis prints every failed reconnect as an unhandled error event.
      this.client.on('error', onceLogger(`redis ${redactUrl(clientOrUrl)}`, this.warn));
    } else if (clientOrUrl instanceof Redis) {
      this.client = clientOrUrl;
      this.owned = false;
    } else {
      throw new TypeError('expected an ioredis client or a redis:// URL');
    }
    if (this.client.status === 'ready') this.started = true;
    else this.client.once('ready', () => (this.started = true));
  }

  /**
   * A store just created may be asked before its first connection is up: wait for it, up to the
   * connect timeout (a loaded host can take more than a command's deadline to connect). After that,
   * a lost connection fails calls at once until ioredis reconnects.
   */
  private firstConnection(): Promise<void> {
    // One wait shared by every call that arrives during startup.
    this.connecting ??= new Promise<void>((resolve, reject) => {
      if (this.client.status === 'wait') this.client.connect().catch(() => {});
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const wait = startupWaitMs(this.timeoutMs);
      const timer = setTimeout(() => {
        // Waited once: from now on a dead Redis fails calls at once.
        this.started = true;
        this.client.off('ready', onReady);
        reject(new StoreUnavailableError(`redis did not connect within ${wait} ms`));
      }, wait);
      this.client.once('ready', onReady);
    });
    return this.connecting;
  }

  /**
   * Runs `call` with a deadline. A client that is not connected fails at once, whatever its own
   * offline-queue settings (a borrowed client may queue; we must not wait for it).
   */
  async run<T>(call: (client: Redis) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('redis store is closed');
    if (this.client.status !== 'ready') {
      if (this.started || this.client.status === 'end') throw new StoreUnavailableError(`redis is not connected (${this.client.status})`);
      await this.firstConnection();
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      // Timers run before I/O in Node's loop: after a stall (a permit being signed, GC), a reply
      // already waiting in the socket must be read before the deadline is declared missed.
      // setImmediate runs after the I/O phase, so only a Redis that really did not answer times out.
      const expire = (): void => {
        setImmediate(() => reject(new StoreUnavailableError(`redis did not answer within ${this.timeoutMs} ms`)));
      };
      timer = setTimeout(expire, this.timeoutMs);
    });
    try {
      return await Promise.race([call(this.client), deadline]);
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`redis: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.owned) return;
    await quit(this.client);
  }
}

/** quit() when connected, disconnect() otherwise (quit would wait for a connection that never comes). */
export async function quit(client: Redis): Promise<void> {
  // Errors after this point (a ready check cut short) are our own doing: nothing to report.
  client.removeAllListeners('error');
  client.on('error', () => {});
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through
    }
  }
  client.disconnect();
}

/** A Lua script run with EVALSHA (one round trip); loaded with EVAL when Redis lost it (NOSCRIPT). */
export class Script {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** Warns of a connection error once per outage (not on every reconnect attempt). */
export function onceLogger(what: string, warn: OnWarning): (err: Error) => void {
  let last = '';
  let lastAt = 0;
  return (err: Error) => {
    const now = Date.now();
    if (err.message === last && now - lastAt < 60_000) return;
    last = err.message;
    lastAt = now;
    warn(`${what}: ${err.message}`);
  };
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
