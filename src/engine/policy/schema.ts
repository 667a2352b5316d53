import { z } from 'zod';
import { PolicyError } from '../errors.ts';
import { CONDITIONS, type ConditionSpec } from './conditions.ts';
import { duration, glob } from './value-schemas.ts';
import type { ApprovalRule } from './approval-table.ts';
import type { ScreenSpec } from '../screen/spec.ts';

export type { ConditionSpec, LeafCondition, LeafConditionKey } from './conditions.ts';

/** Nesting of any_of / not deeper than this is refused: policies should stay readable. */
export const MAX_CONDITION_DEPTH = 8;
export const MAX_POLICIES = 10_000;

export const INVARIANT_SCHEMAS = {
  param_max: CONDITIONS.param_max.schema,
  param_min: CONDITIONS.param_min.schema,
  max_actions_per_session: z.number().int().min(1),
  max_session_age: duration,
  allowed_actions: z.array(glob).min(1, 'must not be empty'),
  blocked_actions: z.array(glob).min(1, 'must not be empty'),
} as const;
export type InvariantKey = keyof typeof INVARIANT_SCHEMAS;
export type InvariantRule = { [K in InvariantKey]: { [P in K]: z.infer<(typeof INVARIANT_SCHEMAS)[K]> } }[InvariantKey];
/** `actions` (globs) limits an invariant to some actions; by default it applies to every call. */
export type FileInvariantSpec = { name: string; description?: string; actions?: string[] } & InvariantRule;

/** What a policy does when it matches: permit, refuse, or ask a person (DESIGN §11). */
export const EFFECTS = ['permit', 'refuse', 'approve'] as const;
export type Effect = (typeof EFFECTS)[number];

/**
 * The fields of one policy table. Conditions are checked one by one by the loader (for paths like
 * `policy[2].conditions[0].param_max.feild`); a field added here reaches PolicySpec by itself.
 */
export const policyHeaderSchema = z.strictObject({
  name: z.string().min(1, 'must not be empty').max(256),
  effect: z.enum(EFFECTS),
  conditions: z.array(z.unknown()),
  /** Approve policies only; read by approval-table.ts. */
  approval: z.unknown().optional(),
  description: z.string().max(4096).optional(),
  priority: z.number().int().min(0).max(1_000_000).optional(),
});

export const documentSchema = z.strictObject({
  policy: z.array(z.unknown()).max(MAX_POLICIES).optional(),
  policies: z.array(z.unknown()).max(MAX_POLICIES).optional(),
  combining: z.enum(['deny-overrides', 'first-match']).optional(),
  invariant: z.array(z.unknown()).optional(),
  invariants: z.array(z.unknown()).optional(),
  screen: z.array(z.unknown()).optional(),
  screens: z.array(z.unknown()).optional(),
});

/** A loaded policy: its header as parsed, with validated conditions and the default priority applied. */
export type PolicySpec = Omit<z.output<typeof policyHeaderSchema>, 'conditions' | 'priority' | 'approval'> & {
  conditions: ConditionSpec[];
  priority: number;
  /** Approve policies: their `approval` table with defaults filled in. */
  approval?: ApprovalRule;
};

export interface PolicySetSpec {
  combining: 'deny-overrides' | 'first-match';
  policies: PolicySpec[];
  invariants: FileInvariantSpec[];
  /** `[[screen]]` blocks: what tool results are screened for (DESIGN §13). */
  screens: ScreenSpec[];
}

// ---------------------------------------------------------------------------------------------

/** Parses `value` with `schema`, turning the first issue into a PolicyError at `path`. */
export function parseAt<T extends z.ZodType>(schema: T, value: unknown, path: string, known?: readonly string[]): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // A typo'd key also shows up as a missing required one: name the typo, it is the real mistake.
  const issues = result.error.issues;
  let issue = (issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]) as z.core.$ZodIssue;
  let at = joinPath(path, issue.path);
  // A union (one value or a list; a duration string or seconds) fails in every branch: report the
  // branch the value was meant for, the one whose type it has, deepest first.
  while (issue.code === 'invalid_union') {
    const meant = issue.errors
      .map((branch) => branch[0])
      .filter((i): i is z.core.$ZodIssue => i !== undefined && !(i.code === 'invalid_type' && i.path.length === 0))
      .sort((a, b) => b.path.length - a.path.length)[0];
    if (!meant) break;
    issue = meant;
    at = joinPath(at, issue.path);
  }
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] as string;
    const fields = known ?? knownKeys(schema, issue.path);
    throw new PolicyError(joinPath(at, [key]), `unknown key${suggest(key, fields)}`);
  }
  throw new PolicyError(at, describeIssue(issue));
}

function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let at: unknown = schema;
  for (const step of path) {
    const shape = (at as { shape?: Record<string, unknown> }).shape;
    if (!shape || typeof step !== 'string') return [];
    at = shape[step];
  }
  const shape = (at as { shape?: Record<string, unknown> })?.shape;
  return shape ? Object.keys(shape) : [];
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') {
    const received = (issue as { received?: string }).received;
    return `expected ${issue.expected}${received ? `, got ${received}` : ''}`;
  }
  if (issue.code === 'invalid_value') return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'invalid_union') {
    const expected = new Set(issue.errors.map((branch) => branch[0]).flatMap((i) => (i?.code === 'invalid_type' ? [i.expected] : [])));
    return expected.size > 0 ? `expected ${[...expected].join(' or ')}` : 'has the wrong type';
  }
  return issue.message;
}

export function joinPath(base: string, steps: readonly PropertyKey[]): string {
  let out = base;
  for (const step of steps) {
    if (typeof step === 'number') out += `[${step}]`;
    else out += out === '' ? String(step) : `.${String(step)}`;
  }
  return out;
}

/** " (did you mean x?)" when a known key is one or two edits away. */
export function suggest(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] as number;
}
