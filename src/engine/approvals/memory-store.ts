import type { ApprovalDecideResult, ApprovalLookup, ApprovalOpenResult, ApprovalStore } from '../ports.ts';
import { StoreUnavailableError } from '../stores.ts';
import { applyDecision, expireIfDue, giveUse, isLive, takeUse } from './lifecycle.ts';
import type { ApprovalDecision, ApprovalFilter, StoredApproval } from './types.ts';

export interface InMemoryApprovalStoreOptions {
  /** Requests that stopped answering for their call are kept this long for `list`/`get` (default 24 h). */
  retentionMs?: number;
  /** At most this many requests are held; beyond it new ones are refused (STORE_UNAVAILABLE). Default 10 000. */
  maxRequests?: number;
}

/**
 * Approval requests in this process (the default): for one gate, or several in one process. Every
 * method runs to completion synchronously, so each is atomic. Records handed out are copies.
 */
export class InMemoryApprovalStore implements ApprovalStore {
  private readonly byId = new Map<string, StoredApproval>();
  private readonly byKey = new Map<string, string>();
  private readonly listeners = new Set<(id: string) => void>();
  private readonly retentionMs: number;
  private readonly maxRequests: number;

  constructor(opts: InMemoryApprovalStoreOptions = {}) {
    this.retentionMs = opts.retentionMs ?? 86_400_000;
    this.maxRequests = opts.maxRequests ?? 10_000;
    if (!Number.isFinite(this.retentionMs) || this.retentionMs < 0) throw new TypeError('retentionMs must be a number >= 0');
    if (!Number.isSafeInteger(this.maxRequests) || this.maxRequests < 1) throw new TypeError('maxRequests must be a positive integer');
  }

  open(key: string, now: number, fresh?: StoredApproval): ApprovalOpenResult {
    const current = this.byId.get(this.byKey.get(key) ?? '');
    let expired: string | undefined;
    if (current) {
      if (expireIfDue(current, now)) expired = current.id;
      if (isLive(current, now)) {
        const answer = (outcome: ApprovalOpenResult['outcome']): ApprovalOpenResult => ({
          outcome,
          id: current.id,
          expiresAt: current.expiresAt,
        });
        if (current.status !== 'granted') return answer(current.status === 'pending' ? 'pending' : 'denied');
        if (!fresh) return { ...answer('granted'), usesLeft: current.usesLeft };
        takeUse(current, now);
        return { ...answer('used'), usesLeft: current.usesLeft };
      }
    }
    const done = (result: ApprovalOpenResult): ApprovalOpenResult => (expired === undefined ? result : { ...result, expired });
    if (!fresh) return done({ outcome: 'none' });
    if (this.byId.size >= this.maxRequests) this.sweep(now);
    if (this.byId.size >= this.maxRequests) throw new StoreUnavailableError(`too many approval requests (${this.maxRequests}) held`);
    const stored = structuredClone(fresh);
    this.byId.set(stored.id, stored);
    this.byKey.set(key, stored.id);
    return done({ outcome: 'created', id: stored.id, expiresAt: stored.expiresAt });
  }

  giveBack(id: string, now: number): boolean {
    const r = this.byId.get(id);
    return r !== undefined && giveUse(r, now);
  }

  get(id: string, now: number): ApprovalLookup | undefined {
    const r = this.byId.get(id);
    if (!r) return undefined;
    const expired = expireIfDue(r, now);
    return { request: structuredClone(r), expired };
  }

  list(filter: ApprovalFilter, now: number): ApprovalLookup[] {
    const out: ApprovalLookup[] = [];
    for (const r of this.byId.values()) {
      const expired = expireIfDue(r, now);
      if (filter.status !== undefined && r.status !== filter.status) continue;
      if (filter.principalId !== undefined && r.principal.id !== filter.principalId) continue;
      out.push({ request: structuredClone(r), expired });
    }
    return out.sort((a, b) => b.request.createdAt - a.request.createdAt);
  }

  decide(id: string, decision: ApprovalDecision, now: number): ApprovalDecideResult {
    const r = this.byId.get(id);
    if (!r) return { ok: false, code: 'NOT_FOUND' };
    const wasDue = (r.status === 'pending' || r.status === 'granted') && now >= r.expiresAt;
    const outcome = applyDecision(r, structuredClone(decision), now);
    if (outcome !== 'ok') return { ok: false, code: outcome, expired: wasDue };
    for (const listener of [...this.listeners]) {
      try {
        listener(id);
      } catch {
        // a listener's failure is its own; the decision stands
      }
    }
    return { ok: true, request: structuredClone(r) };
  }

  subscribe(listener: (id: string) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Forgets requests that stopped answering for their call more than `retentionMs` ago. */
  private sweep(now: number): void {
    for (const [id, r] of this.byId) {
      if (isLive(r, now) || now - r.expiresAt < this.retentionMs) continue;
      this.byId.delete(id);
      if (this.byKey.get(r.key) === id) this.byKey.delete(r.key);
    }
  }
}
