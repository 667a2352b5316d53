import type { ValidContext } from '../context.ts';
import type { SessionState } from '../stores.ts';
import type { Condition, EvalInput } from './compile.ts';
import type { PolicySet } from './policy-set.ts';
import type { Effect } from './schema.ts';

export interface ConditionTrace {
  condition: string;
  holds: boolean;
  /** What must hold, and (when it fails) what was found. */
  detail: string;
  /** Rate limits and budgets: whether the call could be charged is decided at evaluation. */
  stateful: boolean;
}

export interface PolicyTrace {
  name: string;
  effect: Effect;
  priority: number;
  /** Whether this policy's stateless conditions all hold. */
  matches: boolean;
  /** False when the policy cannot apply to the action at all (indexed out). */
  applies: boolean;
  conditions: ConditionTrace[];
}

/** For each policy (in evaluation order): which condition held or failed, and why. */
export function explainPolicies(set: PolicySet, ctx: ValidContext, now: number, session?: SessionState): PolicyTrace[] {
  const input: EvalInput = { ctx, now, session };
  const applicable = new Set(set.candidates(ctx.actionName));
  return set.policies.map((policy) => {
    const conditions = policy.conditions.map((c: Condition) => {
      const holds = c.test(input);
      return { condition: c.key, holds, detail: holds ? c.describe : c.why(input), stateful: c.charge !== undefined };
    });
    return {
      name: policy.name,
      effect: policy.effect,
      priority: policy.priority,
      applies: applicable.has(policy),
      matches: applicable.has(policy) && conditions.every((c) => c.holds),
      conditions,
    };
  });
}
