import { z } from 'zod';
import { PRINCIPAL_KINDS } from '../context.ts';
import { parseDuration } from '../duration.ts';
import { fieldProblem } from '../json-pointer.ts';
import { globProblem } from '../glob.ts';
import { parseTimeWindow } from '../conditions/time-window.ts';
import { rootProblem } from '../conditions/path-within.ts';
import { hostPatternProblem } from '../conditions/url-host.ts';
import { cidrProblem } from '../conditions/ip-in.ts';
import { PolicyError } from '../errors.ts';

/** Nesting of any_of / not deeper than this is refused: policies should stay readable. */
export const MAX_CONDITION_DEPTH = 8;
export const MAX_POLICIES = 10_000;

const refineWith = (problem: (v: string) => string | undefined) => (v: string, ctx: z.RefinementCtx) => {
  const p = problem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
};
const durationProblem = (v: string | number): string | undefined => {
  try {
    parseDuration(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

/** Judged paths are absolute and never end in `/`: an exclude glob that cannot match one excludes nothing. */
const excludeProblem = (g: string): string | undefined =>
  (!g.startsWith('/') && !g.startsWith('*')) || (g.length > 1 && g.endsWith('/'))
    ? `"${g}" would never match a path (paths are absolute, without a trailing /): write e.g. "*/.env" or "*/.git/*"`
    : undefined;

const text = z.string().min(1, 'must not be empty').max(4096);
const glob = z.string().max(1024).superRefine(refineWith(globProblem));
const field = z.string().max(1024).superRefine(refineWith(fieldProblem));
const duration = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  const p = durationProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1, 'must not be empty')]);
const scalar = z.union([z.string(), z.number(), z.boolean()]);
export const PER_SCOPES = ['principal+action', 'principal', 'session', 'global'] as const;

/** Schemas of the leaf conditions, by their single key. any_of and not are handled by the loader. */
export const CONDITION_SCHEMAS = {
  identity_kind: oneOrMany(z.enum(PRINCIPAL_KINDS)),
  identity_role: oneOrMany(text),
  identity_id: oneOrMany(glob),
  action: oneOrMany(glob),
  resource: oneOrMany(glob),
  param_max: z.strictObject({ field, max: z.number() }),
  param_min: z.strictObject({ field, min: z.number() }),
  param_in: z.strictObject({ field, values: z.array(scalar).min(1, 'must not be empty') }),
  param_not_in: z.strictObject({ field, values: z.array(scalar).min(1, 'must not be empty') }),
  param_glob: z.strictObject({ field, pattern: glob }),
  param_max_length: z.strictObject({ field, max: z.number().int().min(0) }),
  path_within: z.strictObject({
    field,
    roots: z.array(z.string().superRefine(refineWith(rootProblem))).min(1, 'must not be empty'),
    // Globs no path may match even inside a root, e.g. "*/.env", "*.pem".
    exclude: z.array(glob.superRefine(refineWith(excludeProblem))).min(1, 'must not be empty').optional(),
  }),
  url_host_in: z.strictObject({
    field,
    hosts: z.array(z.string().superRefine(refineWith(hostPatternProblem))).min(1, 'must not be empty'),
    schemes: z.array(z.enum(['http', 'https', 'ws', 'wss'])).min(1).optional(),
  }),
  ip_in: z.strictObject({ cidrs: z.array(z.string().superRefine(refineWith(cidrProblem))).min(1, 'must not be empty') }),
  country_in: z.strictObject({ codes: z.array(z.string().regex(/^[A-Z]{2}$/, 'must be an upper-case ISO 3166 alpha-2 code')).min(1, 'must not be empty') }),
  rate_limit: z.strictObject({ max: z.number().int().min(1), window: duration, per: z.enum(PER_SCOPES).optional() }),
  budget: z.strictObject({ field, max: z.number().positive(), window: duration, per: z.enum(PER_SCOPES).optional() }),
  session_age_max: duration,
  time_window: z.string().superRefine((v, ctx) => {
    try {
      parseTimeWindow(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  }),
} as const;

export type LeafConditionKey = keyof typeof CONDITION_SCHEMAS;
export type LeafCondition = { [K in LeafConditionKey]: { [P in K]: z.infer<(typeof CONDITION_SCHEMAS)[K]> } }[LeafConditionKey];
export type ConditionSpec = LeafCondition | { any_of: ConditionSpec[] } | { not: ConditionSpec };
export const CONDITION_KEYS = [...Object.keys(CONDITION_SCHEMAS), 'any_of', 'not'];
export const STATEFUL_CONDITIONS = new Set(['rate_limit', 'budget']);

export const INVARIANT_SCHEMAS = {
  param_max: CONDITION_SCHEMAS.param_max,
  param_min: CONDITION_SCHEMAS.param_min,
  max_actions_per_session: z.number().int().min(1),
  max_session_age: duration,
  allowed_actions: z.array(glob).min(1, 'must not be empty'),
  blocked_actions: z.array(glob).min(1, 'must not be empty'),
} as const;
export type InvariantKey = keyof typeof INVARIANT_SCHEMAS;
export type InvariantRule = { [K in InvariantKey]: { [P in K]: z.infer<(typeof INVARIANT_SCHEMAS)[K]> } }[InvariantKey];
/** `actions` (globs) limits an invariant to some actions; by default it applies to every call. */
export type FileInvariantSpec = { name: string; description?: string; actions?: string[] } & InvariantRule;

export const policyHeaderSchema = z.strictObject({
  name: z.string().min(1, 'must not be empty').max(256),
  effect: z.enum(['permit', 'refuse']),
  conditions: z.array(z.unknown()),
  description: z.string().max(4096).optional(),
  priority: z.number().int().min(0).max(1_000_000).optional(),
});

export const documentSchema = z.strictObject({
  policy: z.array(z.unknown()).max(MAX_POLICIES).optional(),
  policies: z.array(z.unknown()).max(MAX_POLICIES).optional(),
  combining: z.enum(['deny-overrides', 'first-match']).optional(),
  invariant: z.array(z.unknown()).optional(),
  invariants: z.array(z.unknown()).optional(),
});

export interface PolicySpec {
  name: string;
  effect: 'permit' | 'refuse';
  conditions: ConditionSpec[];
  description?: string;
  priority: number;
}

export interface PolicySetSpec {
  combining: 'deny-overrides' | 'first-match';
  policies: PolicySpec[];
  invariants: FileInvariantSpec[];
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
