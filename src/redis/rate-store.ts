import type { ChargeResult, RateCharge, RateStore } from '../engine/stores.ts';
import { Connection, Script, type RedisClientOrUrl, type RedisStoreOptions } from './connection.ts';
import { encodeKeyPart, KEY_TAGS } from './keys.ts';
import { CHARGE_SCRIPT, REFUND_SCRIPT } from './rate-script.ts';

export interface RedisRateStoreOptions extends RedisStoreOptions {
  /**
   * Keys live this much longer than their window (Redis time). Covers gate clocks running behind
   * Redis; the window itself is always judged by the gate's `now`. Default 60 s.
   */
  ttlSlackMs?: number;
  /**
   * Whose clock places charges in their windows. `'gate'` (default): the `now` each gate passes
   * in, so injected test clocks work. `'redis'`: Redis' TIME, read inside the script — one clock
   * for every replica, so a replica whose clock runs ahead cannot see the others' charges expire
   * early (under-counting). Use it when several replicas share limits.
   */
  clock?: 'gate' | 'redis';
}

const charge = new Script(CHARGE_SCRIPT);
const refund = new Script(REFUND_SCRIPT);

/**
 * Rate limits and budgets shared by every replica: a sliding window per limit, checked and charged
 * for all of a policy's limits atomically in one Lua script (one round trip per evaluation).
 */
export class RedisRateStore implements RateStore {
  private readonly conn: Connection;
  private readonly slack: string;
  private readonly redisClock: boolean;

  constructor(clientOrUrl: RedisClientOrUrl, opts: RedisRateStoreOptions = {}) {
    this.conn = new Connection(clientOrUrl, opts);
    const slack = opts.ttlSlackMs ?? 60_000;
    if (!Number.isFinite(slack) || slack < 0) throw new TypeError('ttlSlackMs must be a number >= 0');
    this.slack = String(slack);
    const clock = opts.clock ?? 'gate';
    if (clock !== 'gate' && clock !== 'redis') throw new TypeError("clock must be 'gate' or 'redis'");
    this.redisClock = clock === 'redis';
  }

  async checkAndCharge(charges: readonly RateCharge[], chargeId: string, now: number): Promise<ChargeResult> {
    if (charges.length === 0) return { admitted: true };
    const keys: string[] = [];
    const args: string[] = [this.redisClock ? 'redis' : num(now, 'now'), chargeId, this.slack];
    for (const c of charges) {
      keys.push(...this.keysFor(c.key));
      args.push(num(c.amount, 'amount'), num(c.max, 'max'), num(c.windowMs, 'windowMs'));
    }
    const reply = await this.conn.run((client) => charge.run(client, keys, args));
    return parseChargeReply(reply, charges.length);
  }

  async refund(charges: readonly RateCharge[], chargeId: string): Promise<void> {
    if (charges.length === 0) return;
    const keys: string[] = [];
    for (const c of charges) keys.push(...this.keysFor(c.key));
    await this.conn.run((client) => refund.run(client, keys, [chargeId]));
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  private keysFor(key: string): [string, string] {
    const part = encodeKeyPart(key);
    return [this.conn.prefix + KEY_TAGS.rateEntries + part, this.conn.prefix + KEY_TAGS.rateSums + part];
  }
}

function num(value: number, name: string): string {
  // A non-finite number would reach Lua as nil or inf; refuse it here (the gate fails closed).
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`rate charge ${name} must be a finite number`);
  return String(value);
}

function parseChargeReply(reply: unknown, count: number): ChargeResult {
  if (!Array.isArray(reply)) throw new Error('unexpected reply from the rate script');
  if (reply[0] === 1) return reply[1] === 1 ? { admitted: true, repeated: true } : { admitted: true };
  const index = reply[1];
  if (reply[0] !== 0 || typeof index !== 'number' || index < 0 || index >= count) throw new Error('unexpected reply from the rate script');
  const result: ChargeResult = { admitted: false, index };
  if (typeof reply[2] === 'string') {
    const retry = Number(reply[2]);
    if (Number.isFinite(retry)) result.retryAfterMs = retry;
  }
  return result;
}
