import { validateContext } from '../engine/context.ts';
import { judgedBeforeTheCall, type Condition, type EvalInput } from '../engine/policy/condition.ts';
import type { PolicySet } from '../engine/policy/policy-set.ts';
import type { PrincipalConfig } from './config.ts';

/**
 * Whether some call of `action` by `principal` could be permitted. Conservative toward showing:
 * any condition that depends on arguments, time or state is assumed satisfiable. A tool is hidden
 * only when no permit policy can match on identity and action alone, or a refuse policy always
 * matches. The gate still evaluates every call; this only keeps the tool list honest.
 */
export function couldBePermitted(policies: PolicySet, principal: PrincipalConfig, action: string, resource?: string): boolean {
  let input: EvalInput;
  // Conditions on who is calling and what (and, with a known resource such as a listed URI or a
  // prompt name, on the resource), never on the arguments or on time.
  const isStatic = (c: Condition): boolean => judgedBeforeTheCall(c, resource !== undefined);
  try {
    const raw: Record<string, unknown> = {
      principalId: principal.principalId,
      principalKind: principal.principalKind,
      roles: principal.roles,
      actionName: action,
      params: {},
    };
    if (resource !== undefined) raw.resource = resource;
    const ctx = validateContext(raw);
    input = { ctx, now: Date.now(), session: undefined };
  } catch {
    return false;
  }
  let permitted = false;
  for (const policy of policies.candidates(action)) {
    const staticOnly = policy.conditions.every(isStatic);
    const staticHolds = policy.conditions.every((c) => !isStatic(c) || c.test(input));
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
