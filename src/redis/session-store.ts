import type { GeoLocation } from '../engine/context.ts';
import { recentLimitOf, type ObserveResult, type SessionObservation, type SessionState, type SessionStore } from '../engine/stores.ts';
import type { InvalidationScope } from '../engine/verdict.ts';
import { Connection, Script, type RedisClientOrUrl, type RedisStoreOptions } from './connection.ts';
import { encodeKeyPart, KEY_TAGS } from './keys.ts';
import { INVALIDATE_SCRIPT, OBSERVE_SCRIPT } from './session-script.ts';

export interface RedisSessionStoreOptions extends RedisStoreOptions {
  /** Sessions idle this long are forgotten (default 7 days); invalidated sessions are remembered as long. */
  idleTtlMs?: number;
  /** Keys outlive the idle TTL by this much (Redis time), for gate clocks behind Redis. Default 60 s. */
  ttlSlackMs?: number;
}

const observe = new Script(OBSERVE_SCRIPT);
const invalidate = new Script(INVALIDATE_SCRIPT);

/**
 * Session state shared by every replica: principal binding, origins recorded on first sight, the
 * recent-call window and invalidations (session, and principal/global cutoffs by session start).
 * An invalidation at one replica is seen by the next observe at any other, with no bus needed.
 */
export class RedisSessionStore implements SessionStore {
  private readonly conn: Connection;
  private readonly idle: string;
  private readonly slack: string;
  private readonly keepMs: string;

  constructor(clientOrUrl: RedisClientOrUrl, opts: RedisSessionStoreOptions = {}) {
    this.conn = new Connection(clientOrUrl, opts);
    const idle = opts.idleTtlMs ?? 7 * 86_400_000;
    const slack = opts.ttlSlackMs ?? 60_000;
    if (!Number.isFinite(idle) || idle <= 0) throw new TypeError('idleTtlMs must be a positive number');
    if (!Number.isFinite(slack) || slack < 0) throw new TypeError('ttlSlackMs must be a number >= 0');
    this.idle = String(idle);
    this.slack = String(slack);
    this.keepMs = String(Math.ceil(idle + slack));
  }

  async observe(obs: SessionObservation): Promise<ObserveResult> {
    const p = this.conn.prefix;
    const sid = encodeKeyPart(obs.sessionId);
    const keys = [
      p + KEY_TAGS.sessionInvalid + sid,
      p + KEY_TAGS.session + sid,
      p + KEY_TAGS.sessionRecent + sid,
      p + KEY_TAGS.principalCutoff + encodeKeyPart(obs.principalId),
      p + KEY_TAGS.globalCutoff,
    ];
    if (!Number.isFinite(obs.now) || !Number.isFinite(obs.behaviourWindowMs)) throw new TypeError('observation times must be finite');
    const args = [
      String(obs.now),
      String(obs.behaviourWindowMs),
      this.idle,
      this.slack,
      String(recentLimitOf(obs)),
      obs.principalId,
      optional(obs.ip),
      optional(obs.device),
      obs.geo === undefined ? '' : JSON.stringify(obs.geo),
    ];
    const reply = await this.conn.run((client) => observe.run(client, keys, args));
    return parseObserveReply(reply);
  }

  async invalidate(scope: InvalidationScope, reason: string, now: number): Promise<void> {
    const p = this.conn.prefix;
    let keys: string[];
    if (scope.type === 'session') {
      const sid = encodeKeyPart(scope.sessionId);
      keys = [p + KEY_TAGS.sessionInvalid + sid, p + KEY_TAGS.session + sid, p + KEY_TAGS.sessionRecent + sid];
    } else if (scope.type === 'principal') {
      keys = [p + KEY_TAGS.principalCutoff + encodeKeyPart(scope.principalId)];
    } else if (scope.type === 'global') {
      keys = [p + KEY_TAGS.globalCutoff];
    } else {
      throw new TypeError('unknown invalidation scope');
    }
    if (!Number.isFinite(now)) throw new TypeError('invalidation time must be finite');
    await this.conn.run((client) => invalidate.run(client, keys, [scope.type, String(reason), String(now), this.keepMs]));
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}

/** "-" absent, "+value" present: keeps an empty string apart from a missing value. */
function optional(value: string | undefined): string {
  return value === undefined ? '-' : `+${value}`;
}

function parseObserveReply(reply: unknown): ObserveResult {
  if (!Array.isArray(reply)) throw new Error('unexpected reply from the session script');
  if (reply[0] === 1) return { invalid: true, reason: typeof reply[1] === 'string' ? reply[1] : 'session invalidated' };
  const [flag, principalId, startedAt, ip, device, geo, count, recent] = reply as unknown[];
  if (
    flag !== 0 ||
    typeof principalId !== 'string' ||
    typeof startedAt !== 'string' ||
    typeof count !== 'number' ||
    typeof recent !== 'number'
  ) {
    throw new Error('unexpected reply from the session script');
  }
  const session: SessionState = {
    principalId,
    startedAt: Number(startedAt),
    actionCount: count,
    recentCalls: recent,
  };
  if (typeof ip === 'string') session.originIp = ip;
  if (typeof device === 'string') session.originDevice = device;
  if (typeof geo === 'string') session.originGeo = JSON.parse(geo) as GeoLocation;
  return { invalid: false, session };
}
