import { approvalEvent } from '../approvals/events.ts';
import type { ApprovalStore, GateEvent } from '../ports.ts';
import type { RateStore } from '../stores.ts';
import type { ApprovalHold } from './approval-step.ts';
import type { Decision } from './decision.ts';
import type { Warn } from './events.ts';

export interface RefundDeps {
  rate: RateStore;
  approvals: ApprovalStore;
  clock: () => number;
  record: (event: GateEvent) => void;
  warn: Warn;
}

/** What a call refused late (signing, a re-check, the audit record) had spent, given back once. */
export class Refunds {
  constructor(private readonly deps: RefundDeps) {}

  /** Takes back what a call refused after its decision had spent: its charges and its use of a grant. */
  async refund(decision: Decision | undefined): Promise<void> {
    await this.giveBack(decision?.approval);
    if (!decision?.charged) return;
    const { charges, chargeId } = decision.charged;
    // Once only: observe mode can meet a signing failure, a late refusal and an audit failure in one
    // call, and a store's refund need not be idempotent (a second one could take back another call's charge).
    decision.charged = undefined;
    try {
      await this.deps.rate.refund(charges, chargeId);
    } catch (err) {
      this.deps.warn(`refund failed (limit stays charged): ${String(err)}`);
    }
  }

  /** Gives back a use of a grant taken for a call refused later on (once). */
  async giveBack(hold: ApprovalHold | undefined): Promise<void> {
    if (!hold?.consumed) return;
    hold.consumed = false;
    try {
      const now = this.deps.clock();
      if (await this.deps.approvals.giveBack(hold.id, now)) this.deps.record(approvalEvent(hold.subject, 'returned', 'granted', now));
    } catch (err) {
      this.deps.warn(`could not give back a use of approval ${hold.id} (it stays spent): ${String(err)}`);
    }
  }
}
