import type { Condition, ConditionBody, Polarity } from './condition.ts';
import { CONDITIONS, isLeafCondition, type ConditionSpec } from './conditions.ts';

export type { Condition, ConditionReads, EvalInput, Polarity } from './condition.ts';

/** Compiles one condition of a policy whose effect gives the polarity (see Polarity). */
export function compileCondition(spec: ConditionSpec, polarity: Polarity = 'permit'): Condition {
  if ('any_of' in spec) return anyOf(spec.any_of, polarity);
  if ('not' in spec) return not(spec.not, polarity);
  const key = Object.keys(spec)[0] as string;
  if (!isLeafCondition(key)) throw new Error(`no compiler for condition ${key}`); // the schema already refused it
  const entry = CONDITIONS[key];
  // The value was parsed by this same entry's schema: its type is the builder's by construction.
  const body = entry.compile((spec as Record<string, unknown>)[key] as never, polarity);
  return withIdentity(key, entry.reads, body);
}

/** One shape for every compiled condition (the hot path calls `test` on all of them). */
function withIdentity(key: string, reads: Condition['reads'], body: ConditionBody): Condition {
  const condition: Condition = { key, reads, describe: body.describe, test: body.test, why: body.why };
  if (body.charge) condition.charge = body.charge;
  if (body.cause) condition.cause = body.cause;
  return condition;
}

function anyOf(specs: ConditionSpec[], polarity: Polarity): Condition {
  const inner = specs.map((c) => compileCondition(c, polarity));
  const describe = `any of (${inner.map((c) => c.describe).join(' | ')})`;
  return withIdentity('any_of', 'nested', {
    describe,
    test: (input) => inner.some((c) => c.test(input)),
    why: (input) => `none of: ${inner.map((c) => c.why(input)).join('; ')}`,
  });
}

function not(spec: ConditionSpec, polarity: Polarity): Condition {
  const inner = compileCondition(spec, polarity === 'permit' ? 'refuse' : 'permit');
  const describe = `not (${inner.describe})`;
  return withIdentity('not', 'nested', { describe, test: (input) => !inner.test(input), why: () => `${describe} (it holds)` });
}
