import type { ReplayStore } from '../engine/stores.ts';
import { Connection, Script, type RedisClientOrUrl, type RedisStoreOptions } from './connection.ts';
import { encodeKeyPart, KEY_TAGS } from './keys.ts';

export interface RedisReplayStoreOptions extends RedisStoreOptions {
  /**
   * A claimed id is kept this much longer than its expiry (Redis time), so a verifier whose clock
   * runs behind (allowed skew) cannot accept it again elsewhere. Default 60 s.
   */
  graceMs?: number;
}

/**
 * Claimed for as long as the key lives: its expiry plus the grace period (Redis expires it then).
 * Not judged by the stored expiry against the caller's `now`: verifiers sharing the store may allow
 * different skews, and one that still accepts the permit after another's idea of its expiry must
 * find it used (the grace period exists for exactly that).
 * KEYS: 1 claim key. ARGV: expiresAt, ttlMs. Reply: 1 first claim, 0 seen.
 */
const CLAIM = new Script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`);

/** Single use of permit ids (`jti`) across every replica and verifier sharing the Redis. */
export class RedisReplayStore implements ReplayStore {
  private readonly conn: Connection;
  private readonly graceMs: number;

  constructor(clientOrUrl: RedisClientOrUrl, opts: RedisReplayStoreOptions = {}) {
    this.conn = new Connection(clientOrUrl, opts);
    const grace = opts.graceMs ?? 60_000;
    if (!Number.isFinite(grace) || grace < 0) throw new TypeError('graceMs must be a number >= 0');
    this.graceMs = grace;
  }

  async claim(id: string, expiresAt: number, now: number): Promise<boolean> {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('a replay id must be a non-empty string');
    if (!Number.isFinite(expiresAt) || !Number.isFinite(now)) throw new TypeError('replay times must be finite');
    const ttl = Math.max(1, Math.ceil(expiresAt - now + this.graceMs));
    const key = this.conn.prefix + KEY_TAGS.replay + encodeKeyPart(id);
    const reply = await this.conn.run((client) => CLAIM.run(client, [key], [String(expiresAt), String(ttl)]));
    return reply === 1;
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}
