import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { ApprovalDecision, ApprovalFilter, StoredApproval } from '../engine/approvals/types.ts';
import { PRINCIPAL_KINDS } from '../engine/context.ts';
import type { ApprovalDecideResult, ApprovalLookup, ApprovalOpenResult, ApprovalStore } from '../engine/ports.ts';
import { StoreUnavailableError } from '../engine/stores.ts';
import { DECIDE_SCRIPT, GET_SCRIPT, GIVE_BACK_SCRIPT, OPEN_SCRIPT } from './approval-script.ts';
import { Connection, onceLogger, quit, Script, type RedisClientOrUrl, type RedisStoreOptions } from './connection.ts';
import { encodeKeyPart, KEY_TAGS } from './keys.ts';

export interface RedisApprovalStoreOptions extends RedisStoreOptions {
  /** Requests are kept this long after they could last have mattered, for `list`/`get` (default 24 h). */
  retentionMs?: number;
  /** `list` reads at most this many of the newest requests (default 1000). */
  listLimit?: number;
}

const openScript = new Script(OPEN_SCRIPT);
const decideScript = new Script(DECIDE_SCRIPT);
const giveBackScript = new Script(GIVE_BACK_SCRIPT);
const getScript = new Script(GET_SCRIPT);

const OPEN_OUTCOMES = new Set(['created', 'pending', 'denied', 'used', 'granted', 'none']);

const principal = z.object({ id: z.string(), kind: z.enum(PRINCIPAL_KINDS), roles: z.array(z.string()).optional() });
/** The fixed fields, as written by this store: read back strictly, anything else is a store failure. */
const docSchema = z.object({
  id: z.string().min(1),
  policy: z.string(),
  reason: z.string(),
  principal,
  action: z.string(),
  resource: z.string().optional(),
  audience: z.string().optional(),
  sessionId: z.string().optional(),
  argsHash: z.string(),
  args: z.unknown().optional(),
  createdAt: z.number(),
  key: z.string(),
  rule: z.object({
    approvers: z.array(z.string()),
    quorum: z.number().int().min(1),
    timeoutMs: z.number().positive(),
    grantTtlMs: z.number().positive(),
    uses: z.number().int().min(1),
  }),
});
const decisionSchema = z.object({ approver: principal, decision: z.enum(['grant', 'deny']), note: z.string().optional(), at: z.number() });
const statusSchema = z.enum(['pending', 'granted', 'denied', 'expired', 'used']);

/**
 * Approval requests shared by every replica: a request made at one is decided and used at any
 * other. Each step (create-or-find-and-use, decide, give back, read with expiry) is one Lua script,
 * so N replicas racing for a grant's last use get exactly one. Decisions are announced on a
 * channel so `wait` wakes at once on every replica (it also polls: pub/sub is at-most-once).
 */
export class RedisApprovalStore implements ApprovalStore {
  private readonly conn: Connection;
  private readonly retentionMs: number;
  private readonly listLimit: number;
  private readonly channel: string;
  private readonly listeners = new Set<(id: string) => void>();
  private subscriber: Redis | undefined;

  constructor(clientOrUrl: RedisClientOrUrl, opts: RedisApprovalStoreOptions = {}) {
    this.conn = new Connection(clientOrUrl, opts);
    this.retentionMs = opts.retentionMs ?? 86_400_000;
    this.listLimit = opts.listLimit ?? 1_000;
    if (!Number.isFinite(this.retentionMs) || this.retentionMs < 0) throw new TypeError('retentionMs must be a number >= 0');
    if (!Number.isSafeInteger(this.listLimit) || this.listLimit < 1) throw new TypeError('listLimit must be a positive integer');
    this.channel = this.conn.prefix + KEY_TAGS.approvalChannel;
  }

  async open(key: string, now: number, fresh?: StoredApproval): Promise<ApprovalOpenResult> {
    const args: string[] = [num(now), fresh ? 'use' : 'look', this.requestKey('')];
    if (fresh) {
      const { status: _s, expiresAt, decisions: _d, usesLeft: _u, ...doc } = fresh;
      const ttl = Math.ceil(fresh.rule.timeoutMs + fresh.rule.grantTtlMs + this.retentionMs);
      args.push(
        encodeKeyPart(fresh.id),
        JSON.stringify(doc),
        num(expiresAt),
        String(fresh.rule.quorum),
        String(fresh.rule.uses),
        String(ttl),
      );
    }
    const keys = [this.conn.prefix + KEY_TAGS.approvalBinding + encodeKeyPart(key), this.conn.prefix + KEY_TAGS.approvalIndex];
    const reply = await this.conn.run((client) => openScript.run(client, keys, args));
    if (!Array.isArray(reply) || reply.length !== 5 || !OPEN_OUTCOMES.has(String(reply[0]))) throw malformed();
    const [outcome, id, expiresAt, usesLeft, expired] = reply.map(String) as [
      ApprovalOpenResult['outcome'],
      string,
      string,
      string,
      string,
    ];
    const result: ApprovalOpenResult = { outcome };
    if (outcome !== 'none') {
      result.id = decodeId(id);
      result.expiresAt = Number(expiresAt);
    }
    if (usesLeft !== '') result.usesLeft = Number(usesLeft);
    if (expired !== '') result.expired = decodeId(expired);
    return result;
  }

  async giveBack(id: string, now: number): Promise<boolean> {
    const reply = await this.conn.run((client) => giveBackScript.run(client, [this.requestKey(encodeKeyPart(id))], [num(now)]));
    return reply === 1;
  }

  async get(id: string, now: number): Promise<ApprovalLookup | undefined> {
    const reply = await this.conn.run((client) => getScript.run(client, [this.requestKey(encodeKeyPart(id))], [num(now)]));
    return lookupOf(reply);
  }

  async list(filter: ApprovalFilter, now: number): Promise<ApprovalLookup[]> {
    const index = this.conn.prefix + KEY_TAGS.approvalIndex;
    const ids = await this.conn.run((client) => client.zrevrange(index, 0, this.listLimit - 1));
    const replies = await this.conn.run((client) => Promise.all(ids.map((id) => getScript.run(client, [this.requestKey(id)], [num(now)]))));
    const out: ApprovalLookup[] = [];
    const gone: string[] = [];
    replies.forEach((reply, i) => {
      const lookup = lookupOf(reply);
      if (!lookup) {
        gone.push(ids[i] as string);
        return;
      }
      const r = lookup.request;
      if (filter.status !== undefined && r.status !== filter.status) return;
      if (filter.principalId !== undefined && r.principal.id !== filter.principalId) return;
      out.push(lookup);
    });
    // Requests Redis expired leave their index entries behind: tidy them (best effort).
    if (gone.length > 0) await this.conn.run((client) => client.zrem(index, ...gone)).catch(() => undefined);
    return out;
  }

  async decide(id: string, decision: ApprovalDecision, now: number): Promise<ApprovalDecideResult> {
    const found = await this.get(id, now);
    if (!found) return { ok: false, code: 'NOT_FOUND' };
    const grantEnds = now + found.request.rule.grantTtlMs;
    const args = [num(now), decision.approver.id, decision.decision, JSON.stringify(decision), num(grantEnds), this.channel, id];
    const reply = await this.conn.run((client) => decideScript.run(client, [this.requestKey(encodeKeyPart(id))], args));
    if (!Array.isArray(reply)) throw malformed();
    if (reply[0] === 'OK') return { ok: true, request: requestOf(reply[1]) };
    const code = String(reply[0]);
    if (code !== 'NOT_FOUND' && code !== 'NOT_PENDING' && code !== 'EXPIRED') throw malformed();
    return { ok: false, code, expired: found.expired || reply[1] === 1 };
  }

  subscribe(listener: (id: string) => void): () => void {
    this.listeners.add(listener);
    this.startSubscriber();
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    this.listeners.clear();
    if (sub) await quit(sub);
    await this.conn.close();
  }

  /** One subscriber connection, opened on first need; its outages only slow `wait` down to polling. */
  private startSubscriber(): void {
    if (this.subscriber) return;
    const sub = this.conn.client.duplicate({ enableOfflineQueue: true, lazyConnect: false });
    this.subscriber = sub;
    sub.on('error', onceLogger('redis approvals subscriber (wait falls back to polling)', this.conn.warn));
    sub.on('message', (channel: string, id: string) => {
      if (channel !== this.channel) return;
      for (const listener of [...this.listeners]) {
        try {
          listener(id);
        } catch {
          // a listener's failure is its own
        }
      }
    });
    sub.subscribe(this.channel).catch(() => {});
  }

  private requestKey(encodedId: string): string {
    return this.conn.prefix + KEY_TAGS.approvalRequest + encodedId;
  }
}

function num(n: number): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new TypeError('approval store times must be finite numbers');
  return String(n);
}

function decodeId(encoded: string): string {
  return Buffer.from(encoded, 'base64url').toString('utf16le');
}

function malformed(): StoreUnavailableError {
  return new StoreUnavailableError('redis: unexpected reply from an approval script');
}

function lookupOf(reply: unknown): ApprovalLookup | undefined {
  if (!Array.isArray(reply)) throw malformed();
  if (reply[0] === -1) return undefined;
  return { expired: reply[0] === 1, request: requestOf(reply[1]) };
}

/** A request hash (HGETALL's flat list) back to the record. */
function requestOf(flat: unknown): StoredApproval {
  if (!Array.isArray(flat) || flat.length % 2 !== 0) throw malformed();
  const h = new Map<string, string>();
  for (let i = 0; i < flat.length; i += 2) h.set(String(flat[i]), String(flat[i + 1]));
  try {
    const doc = docSchema.parse(JSON.parse(h.get('doc') ?? ''));
    const decisions = z.array(decisionSchema).parse(JSON.parse(`[${h.get('decisions') ?? ''}]`));
    const expiresAt = Number(h.get('expiresAt'));
    const usesLeft = Number(h.get('usesLeft'));
    if (!Number.isFinite(expiresAt) || !Number.isSafeInteger(usesLeft)) throw new Error('bad numbers');
    return { ...doc, status: statusSchema.parse(h.get('status')), expiresAt, usesLeft, decisions } as StoredApproval;
  } catch (err) {
    throw new StoreUnavailableError(`redis: an approval request could not be read: ${(err as Error).message}`);
  }
}
