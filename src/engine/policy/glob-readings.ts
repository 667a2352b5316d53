/**
 * Where a pattern reads differently here and in Kavach (DESIGN §5), for `kavach policy check`: a
 * trailing `.*` (Kavach: a bare prefix) and a `*` in `identity_id` (Kavach: exact). The gate
 * already takes the safe reading for each place; these warnings tell the author which one, with
 * an action or id the two readings disagree on.
 */
import { asList } from './condition.ts';
import type { Polarity } from './condition.ts';
import type { ConditionSpec } from './conditions.ts';
import { readingsDisagreeOn } from '../glob.ts';
import type { FileInvariantSpec, PolicySetSpec } from './schema.ts';

const flip = (p: Polarity): Polarity => (p === 'permit' ? 'refuse' : 'permit');

export function globReadingWarnings(spec: PolicySetSpec): string[] {
  const out: string[] = [];
  for (const policy of spec.policies) {
    // approve, like permit, lets a call through (once a human agrees): the narrower reading.
    const polarity: Polarity = policy.effect === 'refuse' ? 'refuse' : 'permit';
    const where = `policy '${policy.name}' (${policy.effect})`;
    for (const c of policy.conditions) walk(c, polarity, where, out);
  }
  for (const inv of spec.invariants) invariantWarnings(inv, out);
  return out;
}

function walk(c: ConditionSpec, polarity: Polarity, where: string, out: string[]): void {
  if ('any_of' in c) {
    for (const inner of c.any_of) walk(inner, polarity, where, out);
  } else if ('not' in c) {
    walk(c.not, flip(polarity), `${where}, inside not`, out);
  } else if ('action' in c || 'resource' in c) {
    const key = 'action' in c ? 'action' : 'resource';
    const patterns = asList('action' in c ? c.action : c.resource);
    for (const p of patterns) out.push(...trailingDot(where, key, p, polarity));
  } else if ('identity_id' in c) {
    for (const id of asList(c.identity_id)) {
      if (!id.includes('*')) continue;
      const example = id === '*' ? 'x' : id.replaceAll('*', 'x');
      out.push(
        polarity === 'permit'
          ? `${where}: identity_id "${id}" is an exact id where it permits (Kavach compares ids exactly): it does not admit "${example}"; list the ids`
          : `${where}: identity_id "${id}" is a glob where it refuses: it also matches "${example}", which Kavach (exact ids) would not refuse`,
      );
    }
  }
}

function trailingDot(where: string, key: string, pattern: string, polarity: Polarity): string[] {
  const example = readingsDisagreeOn(pattern);
  if (example === undefined) return [];
  const stem = pattern.slice(0, -2);
  return [
    polarity === 'permit'
      ? `${where}: ${key} "${pattern}" does not admit "${example}", which Kavach (a trailing .* is the bare prefix "${stem}") would; a permit takes the narrower reading`
      : `${where}: ${key} "${pattern}" also matches "${example}", as Kavach does (a trailing .* is the bare prefix "${stem}"); a refusal takes the broader reading`,
  ];
}

function invariantWarnings(inv: FileInvariantSpec, out: string[]): void {
  const where = `invariant '${inv.name}'`;
  for (const p of inv.actions ?? []) out.push(...trailingDot(where, 'actions', p, 'refuse'));
  if ('blocked_actions' in inv) for (const p of inv.blocked_actions) out.push(...trailingDot(where, 'blocked_actions', p, 'refuse'));
  if ('allowed_actions' in inv) for (const p of inv.allowed_actions) out.push(...trailingDot(where, 'allowed_actions', p, 'permit'));
}
