import { validateContext } from '../engine/context.ts';
import type { EvalInput } from '../engine/policy/compile.ts';
import type { PolicySet } from '../engine/policy/policy-set.ts';
import type { PrincipalConfig } from './config.ts';

/** Conditions that depend only on who is calling and what, never on the arguments or on time. */
const STATIC_KEYS = new Set(['identity_kind', 'identity_role', 'identity_id', 'action']);
/** With a known resource (a listed URI, a prompt name) its condition is static too. */
const STATIC_KEYS_WITH_RESOURCE = new Set([...STATIC_KEYS, 'resource']);

/**
 * Whether some call of `action` by `principal` could be permitted. Conservative toward showing:
 * any condition that depends on arguments, time or state is assumed satisfiable. A tool is hidden
 * only when no permit policy can match on identity and action alone, or a refuse policy always
 * matches. The gate still evaluates every call; this only keeps the tool list honest.
 */
export function couldBePermitted(policies: PolicySet, principal: PrincipalConfig, action: string, resource?: string): boolean {
  let input: EvalInput;
  const staticKeys = resource === undefined ? STATIC_KEYS : STATIC_KEYS_WITH_RESOURCE;
  try {
    const raw: Record<string, unknown> = { principalId: principal.principalId, principalKind: principal.principalKind, roles: principal.roles, actionName: action, params: {} };
    if (resource !== undefined) raw.resource = resource;
    const ctx = validateContext(raw);
    input = { ctx, now: Date.now(), session: undefined };
  } catch {
    return false;
  }
  let permitted = false;
  for (const policy of policies.candidates(action)) {
    const staticOnly = policy.conditions.every((c) => staticKeys.has(c.key));
    const staticHolds = policy.conditions.every((c) => !staticKeys.has(c.key) || c.test(input));
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
