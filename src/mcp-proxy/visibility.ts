import { validateContext } from '../engine/context.ts';
import type { EvalInput } from '../engine/policy/compile.ts';
import type { PolicySet } from '../engine/policy/policy-set.ts';
import type { PrincipalConfig } from './config.ts';

/** Conditions that depend only on who is calling and what, never on the arguments or on time. */
const STATIC_KEYS = new Set(['identity_kind', 'identity_role', 'identity_id', 'action']);

/**
 * Whether some call of `action` by `principal` could be permitted. Conservative toward showing:
 * any condition that depends on arguments, time or state is assumed satisfiable. A tool is hidden
 * only when no permit policy can match on identity and action alone, or a refuse policy always
 * matches. The gate still evaluates every call; this only keeps the tool list honest.
 */
export function couldBePermitted(policies: PolicySet, principal: PrincipalConfig, action: string): boolean {
  let input: EvalInput;
  try {
    const ctx = validateContext({ principalId: principal.principalId, principalKind: principal.principalKind, roles: principal.roles, actionName: action, params: {} });
    input = { ctx, now: Date.now(), session: undefined };
  } catch {
    return false;
  }
  let permitted = false;
  for (const policy of policies.candidates(action)) {
    const staticOnly = policy.conditions.every((c) => STATIC_KEYS.has(c.key));
    const staticHolds = policy.conditions.every((c) => !STATIC_KEYS.has(c.key) || c.test(input));
    if (!staticHolds) continue;
    if (policy.effect === 'refuse') {
      // Under deny-overrides an always-matching refuse wins; under first-match only if it comes first.
      if (staticOnly && (policies.combining === 'deny-overrides' || !permitted)) return false;
      continue;
    }
    permitted = true;
    if (policies.combining === 'first-match' && staticOnly) return true;
  }
  return permitted;
}
