import { compileCondition, type Condition, type EvalInput, type Polarity } from './compile.ts';
import { fixedForTheCaller } from './condition.ts';
import type { ApprovalRule } from './approval-table.ts';
import type { Effect, PolicySetSpec, PolicySpec } from './schema.ts';
import { ScreenSet } from '../screen/screen-set.ts';

export interface CompiledPolicy {
  name: string;
  effect: Effect;
  priority: number;
  description?: string;
  /** Approve policies: who decides, how many, for how long. */
  approval?: ApprovalRule;
  /** Every condition, in file order (positions name the rate counters). */
  conditions: readonly Condition[];
  /** Conditions that are pure tests (rate_limit/budget contribute only their precondition). */
  stateful: readonly { condition: Condition; position: number }[];
  /** Whether the policy's top-level `action` conditions admit an action name (true when it has none). */
  appliesTo: (action: string) => boolean;
  /** The conditions left to test once `appliesTo` holds. */
  rest: readonly Condition[];
}

/** Outcome of the stateless pass. Charging (and so the final answer) comes after drift and invariants. */
export type PolicyPlan =
  | { kind: 'refuse'; code: 'POLICY_DENIED' | 'NO_POLICY_MATCH'; policy?: string; reason: string }
  /**
   * Try in order: a refuse step refuses, a permit step without limits permits, a limited one
   * charges, an approve step asks for (or uses) a person's approval. An approve step is always last.
   */
  | { kind: 'steps'; steps: readonly CompiledPolicy[] };

const CACHE_LIMIT = 10_000;

export class PolicySet {
  readonly combining: 'deny-overrides' | 'first-match';
  /** In evaluation order: file order for deny-overrides, priority then file order for first-match. */
  readonly policies: readonly CompiledPolicy[];
  private readonly byAction = new Map<string, readonly CompiledPolicy[]>();
  /** The `[[screen]]` blocks loaded with these policies (a reload replaces both together). */
  readonly screens: ScreenSet;

  constructor(spec: PolicySetSpec) {
    this.combining = spec.combining;
    this.screens = new ScreenSet(spec.screens);
    const compiled = spec.policies.map(compilePolicy);
    this.policies = spec.combining === 'first-match' ? stableSortByPriority(compiled) : compiled;
  }

  get size(): number {
    return this.policies.length;
  }

  /** Policies that could apply to `action`, in order; cached per action name. */
  candidates(action: string): readonly CompiledPolicy[] {
    let found = this.byAction.get(action);
    if (found) return found;
    found = this.policies.filter((p) => p.appliesTo(action));
    if (this.byAction.size >= CACHE_LIMIT) this.byAction.clear();
    this.byAction.set(action, found);
    return found;
  }

  plan(input: EvalInput): PolicyPlan {
    const candidates = this.candidates(input.ctx.actionName);
    return this.combining === 'first-match' ? this.planFirstMatch(candidates, input) : this.planDenyOverrides(candidates, input);
  }

  /** refuse > approve > permit: the first matching approve policy decides unless a refuse matches. */
  private planDenyOverrides(candidates: readonly CompiledPolicy[], input: EvalInput): PolicyPlan {
    let limited: CompiledPolicy[] | undefined;
    let unlimited: CompiledPolicy | undefined;
    let approve: CompiledPolicy | undefined;
    for (const policy of candidates) {
      if (!holds(policy, input)) continue;
      if (policy.effect === 'refuse') {
        return { kind: 'refuse', code: 'POLICY_DENIED', policy: policy.name, reason: refusedBy(policy, input.ctx) };
      }
      if (policy.effect === 'approve') approve ??= policy;
      else if (policy.stateful.length === 0) unlimited ??= policy;
      else (limited ??= []).push(policy);
    }
    if (approve) return { kind: 'steps', steps: [approve] };
    if (unlimited) return { kind: 'steps', steps: [unlimited] };
    if (limited) return { kind: 'steps', steps: limited };
    return this.noMatch(candidates, input);
  }

  private planFirstMatch(candidates: readonly CompiledPolicy[], input: EvalInput): PolicyPlan {
    const steps: CompiledPolicy[] = [];
    for (const policy of candidates) {
      if (!holds(policy, input)) continue;
      if (policy.effect === 'refuse' && steps.length === 0) {
        return { kind: 'refuse', code: 'POLICY_DENIED', policy: policy.name, reason: refusedBy(policy, input.ctx) };
      }
      steps.push(policy);
      // A permit with limits that are spent falls through to the next match; nothing else does.
      if (policy.effect !== 'permit' || policy.stateful.length === 0) break;
    }
    return steps.length > 0 ? { kind: 'steps', steps } : this.noMatch(candidates, input);
  }

  /** Default deny, naming the nearest permit policy so the caller can change course. */
  private noMatch(candidates: readonly CompiledPolicy[], input: EvalInput): PolicyPlan {
    let nearest: { policy: CompiledPolicy; failing: Condition[] } | undefined;
    for (const policy of candidates) {
      if (policy.effect !== 'permit') continue;
      const failing = policy.conditions.filter((c) => !c.test(input));
      if (failing.some(fixedForTheCaller)) continue;
      if (!nearest || failing.length < nearest.failing.length) nearest = { policy, failing };
    }
    const base = `no policy permits ${subject(input.ctx)}`;
    if (!nearest || nearest.failing.length === 0) return { kind: 'refuse', code: 'NO_POLICY_MATCH', reason: base };
    const first = nearest.failing[0] as Condition;
    // The cause, where the condition can name it (path_within: `..`, outside the roots, which
    // exclude), says what to change; otherwise the rule that failed, and which argument fails it
    // (never its value: the reason is audited even where the arguments are not).
    const cause = first.cause?.(input);
    const name = nearest.policy.name;
    return {
      kind: 'refuse',
      code: 'NO_POLICY_MATCH',
      policy: name,
      reason: cause !== undefined ? `${base}; '${name}' ${cause}` : `${base}; '${name}' requires ${first.why(input)}`,
    };
  }
}

/** Whether a candidate policy (one whose action conditions already hold) matches, limits aside. */
export function holds(policy: CompiledPolicy, input: EvalInput): boolean {
  const conditions = policy.rest;
  for (let i = 0; i < conditions.length; i++) if (!(conditions[i] as Condition).test(input)) return false;
  return true;
}

/**
 * A refuse policy's reason: its name, what it refused, and the policy's `description` when it has
 * one (the author's words on why, e.g. "never touch key material"), on one line without a final
 * full stop (the refusal text adds one).
 */
export function refusedBy(policy: CompiledPolicy, ctx: CallSubject): string {
  const why = policy.description
    ?.replace(/\s+/g, ' ')
    .trim()
    .replace(/[\s.]+$/, '');
  const what = subject(ctx);
  return why ? `'${policy.name}' refuses ${what}: ${why}` : `'${policy.name}' refuses ${what}`;
}

type CallSubject = Pick<EvalInput['ctx'], 'actionName' | 'principalKind' | 'principalId'>;

function subject(ctx: CallSubject): string {
  return `'${ctx.actionName}' for ${ctx.principalKind} '${ctx.principalId}'`;
}

function compilePolicy(spec: PolicySpec): CompiledPolicy {
  // An approve policy reads its conditions as a permit policy does (the narrower reading): what
  // it matches, a person's grant lets through.
  const polarity: Polarity = spec.effect;
  const conditions = spec.conditions.map((c) => compileCondition(c, polarity));
  const stateful = conditions.flatMap((condition, position) => (condition.charge ? [{ condition, position }] : []));
  // Action conditions depend on the action name alone: they are checked once per name, when
  // `candidates` builds its cache, and never again per call.
  const actionConditions = conditions.filter((c) => c.reads === 'action');
  const probe = (action: string): EvalInput => ({ ctx: { actionName: action } as EvalInput['ctx'], now: 0, session: undefined });
  const appliesTo = (action: string) => actionConditions.every((c) => c.test(probe(action)));
  const rest = conditions.filter((c) => c.reads !== 'action');
  const policy: CompiledPolicy = { name: spec.name, effect: spec.effect, priority: spec.priority, conditions, stateful, appliesTo, rest };
  if (spec.description !== undefined) policy.description = spec.description;
  if (spec.approval !== undefined) policy.approval = spec.approval;
  return policy;
}

function stableSortByPriority(policies: CompiledPolicy[]): CompiledPolicy[] {
  return policies
    .map((p, i) => [p, i] as const)
    .sort((a, b) => a[0].priority - b[0].priority || a[1] - b[1])
    .map(([p]) => p);
}
