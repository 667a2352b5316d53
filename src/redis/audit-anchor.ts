import {
  checkAnchorCheckpoint,
  signatureDigest,
  type AnchorCheckpoint,
  type AnchoredCheckpoint,
  type AnchorResult,
  type AuditAnchor,
} from '../audit/anchor.ts';
import { Connection, Script, type RedisClientOrUrl, type RedisStoreOptions } from './connection.ts';
import { encodeKeyPart, KEY_TAGS } from './keys.ts';

export interface RedisAuditAnchorOptions extends RedisStoreOptions {
  /** Default 1000 ms: a checkpoint is sent off the hot path, and a slow answer only delays it. */
  commandTimeoutMs?: number;
}

/**
 * Keeps a checkpoint as the log's newest only if it is later than the one held; the same
 * checkpoint again (a retry whose first answer was lost) is taken; an earlier one, or another one
 * at the same seq, is refused and nothing changes. One script, so two writers racing cannot
 * interleave a read and a write. History keeps every checkpoint taken (seq as the score); its
 * highest counts as held too, so setting the newest-checkpoint hash back does not reopen the past.
 * KEYS: 1 newest (hash: seq, head, time, sig), 2 history (sorted set).
 * ARGV: seq, head, time, sig, history member ("seq head time sigDigest").
 * Reply: {1} taken (or already held), {0, seq, head} a later one held, {2, seq, head} another at this seq.
 */
const RECORD = new Script(`
local seq = tonumber(ARGV[1])
local held = redis.call('HMGET', KEYS[1], 'seq', 'head', 'time', 'sig')
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) > seq and (not held[1] or tonumber(top[2]) > tonumber(held[1])) then
  local entry = {}
  for part in string.gmatch(top[1], '%S+') do table.insert(entry, part) end
  return {0, top[2], entry[2] or ''}
end
if held[1] then
  local heldSeq = tonumber(held[1])
  if seq < heldSeq then return {0, held[1], held[2]} end
  if seq == heldSeq then
    if held[2] == ARGV[2] and held[3] == ARGV[3] and held[4] == ARGV[4] then return {1} end
    return {2, held[1], held[2]}
  end
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'head', ARGV[2], 'time', ARGV[3], 'sig', ARGV[4])
redis.call('ZADD', KEYS[2], seq, ARGV[5])
return {1}
`);

/** History entries read per round trip (by index: a checkpoint taken meanwhile lands after them). */
const PAGE = 5_000;

/**
 * An audit anchor in Redis (DESIGN §14): per log id, the newest checkpoint (with its signature, so
 * a verifier can check the witness's own claim) and the history of every checkpoint taken. Keys
 * never expire: a witness that forgets is no witness. Run Redis with persistence, on another host
 * than the log, and give the writer an ACL user that cannot delete (src/audit/FORMAT.md, Anchors).
 */
export class RedisAuditAnchor implements AuditAnchor {
  private readonly conn: Connection;

  constructor(clientOrUrl: RedisClientOrUrl, opts: RedisAuditAnchorOptions = {}) {
    this.conn = new Connection(clientOrUrl, { ...opts, commandTimeoutMs: opts.commandTimeoutMs ?? 1_000 });
  }

  async record(checkpoint: AnchorCheckpoint): Promise<AnchorResult> {
    checkAnchorCheckpoint(checkpoint);
    const c = checkpoint;
    const member = `${c.seq} ${c.headHash} ${c.time} ${signatureDigest(c.signature)}`;
    const reply = await this.conn.run((client) =>
      RECORD.run(client, this.keys(c.logId), [String(c.seq), c.headHash, String(c.time), c.signature, member]),
    );
    if (!Array.isArray(reply)) throw new Error('unexpected reply from the audit anchor script');
    const [flag, seq, head] = reply as unknown[];
    if (flag === 1) return { accepted: true };
    if ((flag !== 0 && flag !== 2) || typeof seq !== 'string' || typeof head !== 'string')
      throw new Error('unexpected reply from the audit anchor script');
    return { accepted: false, reason: flag === 0 ? 'behind' : 'conflict', held: { seq: Number(seq), headHash: head } };
  }

  async latest(logId: string): Promise<AnchorCheckpoint | undefined> {
    const [latest] = this.keys(logId);
    const [seq, head, time, sig] = await this.conn.run((client) => client.hmget(latest as string, 'seq', 'head', 'time', 'sig'));
    if (seq === null && head === null && time === null && sig === null) return undefined;
    const held = { logId, seq: Number(seq), headHash: head, time: Number(time), signature: sig } as AnchorCheckpoint;
    try {
      checkAnchorCheckpoint(held);
    } catch (err) {
      throw new Error(`the audit anchor's newest checkpoint of log ${logId} is damaged: ${(err as Error).message}`, { cause: err });
    }
    return held;
  }

  /**
   * Reads the whole history and keeps what the members say (not their scores): a score changed by
   * someone with the credentials cannot hide an entry from the range. Sorted by seq.
   */
  async history(logId: string, fromSeq: number, toSeq: number): Promise<AnchoredCheckpoint[]> {
    if (!Number.isSafeInteger(fromSeq) || !Number.isSafeInteger(toSeq)) throw new TypeError('history: seqs must be integers');
    const [, key] = this.keys(logId);
    const out: AnchoredCheckpoint[] = [];
    for (let start = 0; ; start += PAGE) {
      const page = await this.conn.run((client) => client.zrange(key, start, start + PAGE - 1));
      for (const member of page) {
        const entry = parseMember(member, logId);
        if (entry.seq >= fromSeq && entry.seq <= toSeq) out.push(entry);
      }
      if (page.length < PAGE) return out.sort((a, b) => a.seq - b.seq);
    }
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  private keys(logId: string): [string, string] {
    if (typeof logId !== 'string' || logId.length === 0) throw new TypeError('a log id must be a non-empty string');
    const id = encodeKeyPart(logId);
    return [this.conn.prefix + KEY_TAGS.anchorLatest + id, this.conn.prefix + KEY_TAGS.anchorHistory + id];
  }
}

function parseMember(member: string, logId: string): AnchoredCheckpoint {
  const [seq, headHash, time, signatureDigest, extra] = member.split(' ');
  const entry = { seq: Number(seq), headHash: headHash as string, time: Number(time), signatureDigest: signatureDigest as string };
  if (
    extra !== undefined ||
    !Number.isSafeInteger(entry.seq) ||
    !Number.isFinite(entry.time) ||
    !/^[A-Za-z0-9_-]{43}$/.test(entry.headHash) ||
    !/^[A-Za-z0-9_-]{43}$/.test(entry.signatureDigest)
  ) {
    throw new Error(`the audit anchor's history of log ${logId} holds a damaged entry`);
  }
  return entry;
}
