import { bindingOf } from '../approvals/binding.ts';
import type { ValidContext } from '../context.ts';
import type { Invariant } from '../invariants.ts';
import { refusedBy, type CompiledPolicy, type PolicySet } from '../policy/policy-set.ts';
import type { InvalidationScope, RefuseVerdict } from '../verdict.ts';
import { refuse, type Decision, type Epoch } from './decision.ts';

/** Invalidations remembered for calls still being evaluated (a call older than all of them fails closed). */
const INVALIDATION_LOG = 1024;

/**
 * What changed while calls were in flight: reloads and invalidations, numbered, so a permit decided
 * before one of them can be judged again before it is handed out.
 */
export class Epochs {
  /** Bumped by every successful reload. */
  private policyVersion = 0;
  /** Invalidations this gate made or heard of, numbered; the log keeps the latest INVALIDATION_LOG. */
  private invalidationCount = 0;
  private readonly invalidationLog: { scope: InvalidationScope; reason: string }[] = [];

  now(): Epoch {
    return { policies: this.policyVersion, invalidations: this.invalidationCount };
  }

  policiesReloaded(): void {
    this.policyVersion++;
  }

  /** Remembers an invalidation for the calls now in flight; the session store remembers it for later ones. */
  noteInvalidation(scope: InvalidationScope, reason: string): void {
    this.invalidationCount++;
    this.invalidationLog.push({ scope, reason });
    if (this.invalidationLog.length > INVALIDATION_LOG) this.invalidationLog.splice(0, this.invalidationLog.length - INVALIDATION_LOG);
  }

  movedSince(epoch: Epoch): boolean {
    return this.policyVersion !== epoch.policies || this.invalidationCount !== epoch.invalidations;
  }

  /**
   * The refusal a permit decided at `epoch` gets under the gate as it stands now, or undefined
   * when it still stands. Limits are not charged again: the call was admitted by the policies in
   * force when it was charged.
   */
  lateRefusal(
    decision: Decision,
    ctx: ValidContext,
    epoch: Epoch,
    policySet: PolicySet,
    fileInvariants: readonly Invariant[],
  ): RefuseVerdict | undefined {
    const evaluationId = decision.verdict.evaluationId;
    const newer = this.invalidationCount - epoch.invalidations;
    if (newer > 0 && ctx.sessionId !== undefined) {
      if (newer > this.invalidationLog.length) {
        return refuse(
          evaluationId,
          'STORE_UNAVAILABLE',
          'session',
          'too many invalidations while the call was evaluated to tell whether its session survived; retry',
        );
      }
      for (const { scope, reason } of this.invalidationLog.slice(-newer)) {
        // A scope this gate cannot read (a bus delivering junk) covers every session: fail closed.
        const covers =
          scope?.type === 'global' ||
          (scope?.type === 'session' && scope.sessionId === ctx.sessionId) ||
          (scope?.type === 'principal' && scope.principalId === ctx.principalId) ||
          (scope?.type !== 'session' && scope?.type !== 'principal');
        if (covers)
          return refuse(evaluationId, 'SESSION_INVALID', 'session', typeof reason === 'string' ? reason : 'the session was invalidated');
      }
    }
    if (this.policyVersion === epoch.policies) return undefined;
    const input = decision.input;
    if (!input) return refuse(evaluationId, 'NO_POLICY_MATCH', 'policy', 'the policies changed while the call was evaluated');
    const plan = policySet.plan(input);
    if (plan.kind === 'refuse') {
      const verdict = refuse(evaluationId, plan.code, 'policy', plan.reason);
      if (plan.policy !== undefined) verdict.policy = plan.policy;
      return verdict;
    }
    const first = plan.steps[0] as CompiledPolicy;
    if (first.effect === 'refuse') {
      const verdict = refuse(evaluationId, 'POLICY_DENIED', 'policy', refusedBy(first, ctx));
      verdict.policy = first.name;
      return verdict;
    }
    // An approval binds to its policy and rule: one granted under the old set counts only if the
    // new set asks the same question.
    if (first.effect === 'approve' && decision.approval?.key !== bindingOf(ctx, first).key) {
      const verdict = refuse(
        evaluationId,
        'APPROVAL_REQUIRED',
        'policy',
        `the policies changed while the call was evaluated: '${first.name}' asks a person to approve '${ctx.actionName}'; retry to make the request`,
      );
      verdict.policy = first.name;
      return verdict;
    }
    for (const invariant of fileInvariants) {
      if (!invariant.appliesTo(ctx.actionName)) continue;
      const violation = invariant.violation(input);
      if (violation !== undefined) return refuse(evaluationId, 'INVARIANT_VIOLATION', 'invariant', violation);
    }
    return undefined;
  }
}
