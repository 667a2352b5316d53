import {
  signatureDigest,
  type AnchorCheckpoint,
  type AnchoredCheckpoint,
  type AnchorResult,
  type AuditAnchor,
} from '../../src/audit/anchor.ts';

/**
 * The AuditAnchor contract in memory (RedisAuditAnchor's semantics without Redis), with an outage
 * switch and a barrier per accepted checkpoint, so tests can fail it and wait for it without sleeps.
 */
export class MemoryAnchor implements AuditAnchor {
  readonly newest = new Map<string, AnchorCheckpoint>();
  readonly taken = new Map<string, AnchoredCheckpoint[]>();
  /** While set, every call rejects as an unreachable witness would. */
  down: Error | undefined;
  calls = 0;
  private waiters: Array<{ seq: number; resolve: () => void }> = [];

  async record(c: AnchorCheckpoint): Promise<AnchorResult> {
    this.calls++;
    if (this.down) throw this.down;
    const held = this.newest.get(c.logId);
    if (held !== undefined) {
      if (c.seq < held.seq) return { accepted: false, reason: 'behind', held: { seq: held.seq, headHash: held.headHash } };
      if (c.seq === held.seq) {
        const same = held.headHash === c.headHash && held.time === c.time && held.signature === c.signature;
        return same ? { accepted: true } : { accepted: false, reason: 'conflict', held: { seq: held.seq, headHash: held.headHash } };
      }
    }
    this.newest.set(c.logId, { ...c });
    const list = this.taken.get(c.logId) ?? [];
    list.push({ seq: c.seq, headHash: c.headHash, time: c.time, signatureDigest: signatureDigest(c.signature) });
    this.taken.set(c.logId, list);
    this.waiters = this.waiters.filter((w) => (w.seq <= c.seq ? (w.resolve(), false) : true));
    return { accepted: true };
  }

  async latest(logId: string): Promise<AnchorCheckpoint | undefined> {
    this.calls++;
    if (this.down) throw this.down;
    const held = this.newest.get(logId);
    return held === undefined ? undefined : { ...held };
  }

  async history(logId: string, fromSeq: number, toSeq: number): Promise<AnchoredCheckpoint[]> {
    if (this.down) throw this.down;
    return (this.taken.get(logId) ?? []).filter((h) => h.seq >= fromSeq && h.seq <= toSeq);
  }

  async close(): Promise<void> {}

  /** Resolves once a checkpoint at `seq` or later has been taken (for any log). */
  tookThrough(seq: number): Promise<void> {
    for (const held of this.newest.values()) if (held.seq >= seq) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }
}
