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
 * Claimed while its stored expiry is after the gate's `now`; a claim after that takes it again,
 * as the in-memory store does. Redis expires the key a grace period after.
 * KEYS: 1 claim key. ARGV: expiresAt, now, ttlMs. Reply: 1 first claim, 0 seen.
 */
const CLAIM = new Script(`
local prev = redis.call('GET', KEYS[1])
if prev and tonumber(prev) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
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
    const reply = await this.conn.run((client) => CLAIM.run(client, [key], [String(expiresAt), String(now), String(ttl)]));
    return reply === 1;
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}
