/**
 * Every leaf condition of the policy language, one entry each: its schema (what a policy file may
 * write), what part of a call it reads (for static analyses), and its builder. The builder's value
 * is typed from the schema, and the policy types (`ConditionSpec`) come from this table, so a new
 * condition is one entry here and nothing else: the loader, compiler, `policy explain` and tool
 * visibility all work from it. `any_of` and `not` are the language's structure, not entries (compile.ts).
 */
import { z } from 'zod';
import { PRINCIPAL_KINDS } from '../context.ts';
import type { JsonValue } from '../context.ts';
import { parseDuration, formatDuration } from '../duration.ts';
import { compileGlobs, compileGlobsAs, type GlobReading } from '../glob.ts';
import { compileField } from '../json-pointer.ts';
import { inTimeWindow, parseTimeWindow } from '../conditions/time-window.ts';
import { compileLinkCause, compilePathCause, compilePathJudge, normaliseRoot, rootProblem } from '../conditions/path-within.ts';
import { realPathOf } from '../conditions/real-path.ts';
import { compileHostPatterns, hostPatternProblem, urlHostAllowed } from '../conditions/url-host.ts';
import { cidrProblem, compileCidrs } from '../conditions/ip-in.ts';
import {
  asList,
  codePointsAtMost,
  fieldCondition,
  isScalar,
  list,
  numeric,
  scopeKey,
  kindOf,
  type ConditionBody,
  type ConditionReads,
  type EvalInput,
  type Polarity,
} from './condition.ts';
import { PER_SCOPES, duration, field, glob, oneOrMany, refineWith, scalar, text } from './value-schemas.ts';

export interface ConditionDefinition<S extends z.ZodType> {
  /** What a policy file may write as the condition's value. */
  schema: S;
  /** What part of a call it reads; `counter` makes it a charged (stateful) condition. */
  reads: ConditionReads;
  /** The compiled test, from a value the schema accepted. */
  compile: (value: z.output<S>, polarity: Polarity) => ConditionBody;
}

/** Ties an entry's builder to its schema: the builder's value is the schema's output type. */
const condition = <S extends z.ZodType>(definition: ConditionDefinition<S>): ConditionDefinition<S> => definition;

/** Judged paths are absolute and never end in `/`: an exclude glob that cannot match one excludes nothing. */
const excludeProblem = (g: string): string | undefined =>
  (!g.startsWith('/') && !g.startsWith('*')) || (g.length > 1 && g.endsWith('/'))
    ? `"${g}" would never match a path (paths are absolute, without a trailing /): write e.g. "*/.env" or "*/.git/*"`
    : undefined;

/** The reading a pattern takes where it decides a permit (narrower) or a refusal (broader): see glob.ts. */
export const readingFor = (polarity: Polarity): GlobReading => (polarity === 'refuse' ? 'broad' : 'narrow');

const globCondition =
  (what: string, read: (input: EvalInput) => string) =>
  (v: string | string[], polarity: Polarity): ConditionBody => {
    const patterns = asList(v);
    const match = compileGlobsAs(patterns, readingFor(polarity));
    const describe = `${what} matches ${list(patterns)}`;
    return { describe, test: (input) => match(read(input)), why: (input) => `${describe} (got "${read(input)}")` };
  };

/**
 * Kavach compares principal ids exactly. A `*` in one is literal where it would permit (a Kavach
 * file's `bot-*` must not start admitting `bot-1`), and a glob where it refuses.
 */
const identityCondition = (v: string | string[], polarity: Polarity): ConditionBody => {
  const ids = asList(v);
  const exact = new Set(ids);
  const match = polarity === 'refuse' ? compileGlobs(ids) : (id: string) => exact.has(id);
  const describe = `principal id ${polarity === 'refuse' ? 'matches' : 'is'} ${list(ids)}`;
  return { describe, test: ({ ctx }) => match(ctx.principalId), why: ({ ctx }) => `${describe} (got "${ctx.principalId}")` };
};

/** Why a budget cannot charge a call, naming the field and what kind of value it holds, never the value. */
function budgetProblem(field: string, x: JsonValue | undefined, noSession: boolean): string {
  const n = numeric(x);
  if (n === undefined) return `${field} must be a number >= 0, and is ${kindOf(x)}`;
  if (n < 0) return `${field} must be a number >= 0, and is negative`;
  return noSession ? 'a per-session budget needs a session' : `${field} can be charged`;
}

// Entries in this order: it is the order "did you mean" suggestions are tried in.
export const CONDITIONS = {
  identity_kind: condition({
    schema: oneOrMany(z.enum(PRINCIPAL_KINDS)),
    reads: 'principal',
    compile: (v) => {
      const kinds = new Set(asList(v));
      const describe = `principal kind is ${list([...kinds])}`;
      return { describe, test: ({ ctx }) => kinds.has(ctx.principalKind), why: ({ ctx }) => `${describe} (got "${ctx.principalKind}")` };
    },
  }),
  identity_role: condition({
    schema: oneOrMany(text),
    reads: 'roles',
    compile: (v) => {
      const roles = asList(v);
      const describe = `principal has role ${list(roles)}`;
      return {
        describe,
        test: ({ ctx }) => ctx.roles.some((r) => roles.includes(r)),
        why: ({ ctx }) => `${describe} (has ${ctx.roles.length ? list(ctx.roles) : 'no roles'})`,
      };
    },
  }),
  identity_id: condition({ schema: oneOrMany(glob), reads: 'principal', compile: identityCondition }),
  action: condition({ schema: oneOrMany(glob), reads: 'action', compile: globCondition('action', ({ ctx }) => ctx.actionName) }),
  resource: condition({
    schema: oneOrMany(glob),
    reads: 'resource',
    compile: (v, polarity) => {
      const match = compileGlobsAs(asList(v), readingFor(polarity));
      const describe = `resource matches ${list(asList(v))}`;
      return {
        describe,
        test: ({ ctx }) => ctx.resource !== undefined && match(ctx.resource),
        why: ({ ctx }) => `${describe} (got ${ctx.resource === undefined ? 'none' : `"${ctx.resource}"`})`,
      };
    },
  }),
  param_max: condition({
    schema: z.strictObject({ field, max: z.number() }),
    reads: 'arguments',
    compile: (v, polarity) =>
      fieldCondition(
        v.field,
        `${v.field} <= ${v.max}`,
        (x) => {
          const n = numeric(x);
          return n === undefined ? undefined : n <= v.max;
        },
        polarity,
      ),
  }),
  param_min: condition({
    schema: z.strictObject({ field, min: z.number() }),
    reads: 'arguments',
    compile: (v, polarity) =>
      fieldCondition(
        v.field,
        `${v.field} >= ${v.min}`,
        (x) => {
          const n = numeric(x);
          return n === undefined ? undefined : n >= v.min;
        },
        polarity,
      ),
  }),
  param_in: condition({
    schema: z.strictObject({ field, values: z.array(scalar).min(1, 'must not be empty') }),
    reads: 'arguments',
    compile: (v, polarity) => {
      const allowed = new Set<unknown>(v.values);
      return fieldCondition(v.field, `${v.field} is one of ${list(v.values)}`, (x) => (isScalar(x) ? allowed.has(x) : undefined), polarity);
    },
  }),
  param_not_in: condition({
    schema: z.strictObject({ field, values: z.array(scalar).min(1, 'must not be empty') }),
    reads: 'arguments',
    compile: (v, polarity) => {
      const banned = new Set<unknown>(v.values);
      return fieldCondition(
        v.field,
        `${v.field} is none of ${list(v.values)}`,
        (x) => (isScalar(x) ? !banned.has(x) : undefined),
        polarity,
      );
    },
  }),
  param_glob: condition({
    schema: z.strictObject({ field, pattern: glob }),
    reads: 'arguments',
    compile: (v, polarity) => {
      const match = compileGlobs([v.pattern]);
      return fieldCondition(v.field, `${v.field} matches "${v.pattern}"`, (x) => (typeof x === 'string' ? match(x) : undefined), polarity);
    },
  }),
  param_max_length: condition({
    schema: z.strictObject({ field, max: z.number().int().min(0) }),
    reads: 'arguments',
    compile: (v, polarity) =>
      fieldCondition(
        v.field,
        `${v.field} is at most ${v.max} long`,
        (x) => {
          if (typeof x === 'string') return codePointsAtMost(x, v.max);
          return Array.isArray(x) ? x.length <= v.max : undefined;
        },
        polarity,
        { wholeLists: true },
      ),
  }),
  path_within: condition({
    schema: z.strictObject({
      field,
      roots: z.array(z.string().superRefine(refineWith(rootProblem))).min(1, 'must not be empty'),
      // Subtrees no path may fall in even inside a root, e.g. "*/.env", "*.pem", "*/.git/*" (see exclude.ts).
      exclude: z
        .array(glob.superRefine(refineWith(excludeProblem)))
        .min(1, 'must not be empty')
        .optional(),
      // Also judge the path with every symlink resolved (file system I/O per call; see real-path.ts).
      follow_links: z.boolean().optional(),
    }),
    reads: 'arguments',
    compile: (v, polarity) => {
      const roots = v.roots.map(normaliseRoot);
      // Exclusions live in the allow-list, so they hold for every item of a list (a refuse policy
      // with param_glob sees only one string field and is easy to walk around).
      const judgeGiven = compilePathJudge(roots, v.exclude);
      const but = v.exclude ? `, none matching ${list(v.exclude)}` : '';
      const links = v.follow_links === true ? ', symlinks resolved' : '';
      const describe = `${v.field} is a path (or list of paths) inside ${list(roots)}${but}${links}`;
      // What a refusal says instead of the rule: `..`, relative, outside the roots, which exclude.
      const causeGiven = compilePathCause(roots, v.exclude);
      if (v.follow_links !== true) return fieldCondition(v.field, describe, judgeGiven, polarity, { listable: true, explain: causeGiven });
      // The real path must pass as well (permit), or either one matches (refuse; approve too, so a
      // link cannot take a call past the human it needs to an unbounded permit): see real-path.ts.
      // Roots are resolved once, here, so a root that is itself a link (macOS /tmp) still holds its real paths.
      const realRoots = roots.map((r) => realPathOf(r) ?? r);
      const judgeReal = compilePathJudge(realRoots, v.exclude);
      const linkCause = compileLinkCause(realRoots, v.exclude, roots);
      const decided = polarity !== 'permit';
      return fieldCondition(
        v.field,
        describe,
        (x) => {
          const given = judgeGiven(x);
          if (given === undefined || given === decided) return given; // no I/O when the string decides
          const real = realPathOf(x as string);
          return real === undefined ? undefined : judgeReal(real);
        },
        polarity,
        {
          listable: true,
          explain: (x) => {
            const given = causeGiven(x);
            if (given !== undefined) return given;
            const real = realPathOf(x as string);
            if (real === undefined)
              return 'cannot be resolved on the file system (a dangling or looping symlink, a file where a directory should be, or no permission)';
            return linkCause(real);
          },
        },
      );
    },
  }),
  url_host_in: condition({
    schema: z.strictObject({
      field,
      hosts: z.array(z.string().superRefine(refineWith(hostPatternProblem))).min(1, 'must not be empty'),
      schemes: z
        .array(z.enum(['http', 'https', 'ws', 'wss']))
        .min(1)
        .optional(),
    }),
    reads: 'arguments',
    compile: (v, polarity) => {
      const hostAllowed = compileHostPatterns(v.hosts);
      const schemes = v.schemes ?? ['http', 'https'];
      // Agents call the same few URLs again and again; a bounded memo saves the WHATWG parse.
      const memo = new Map<string, boolean | undefined>();
      const allowed = (x: JsonValue): boolean | undefined => {
        if (typeof x !== 'string') return undefined;
        if (memo.has(x)) return memo.get(x);
        const ok = urlHostAllowed(x, hostAllowed, schemes);
        if (memo.size >= 1024) memo.clear();
        if (x.length <= 512) memo.set(x, ok);
        return ok;
      };
      return fieldCondition(v.field, `${v.field} is a ${schemes.join('/')} URL (or list of them) on ${list(v.hosts)}`, allowed, polarity, {
        listable: true,
      });
    },
  }),
  ip_in: condition({
    schema: z.strictObject({ cidrs: z.array(z.string().superRefine(refineWith(cidrProblem))).min(1, 'must not be empty') }),
    reads: 'network',
    compile: (v) => {
      const inside = compileCidrs(v.cidrs);
      const describe = `caller IP in ${list(v.cidrs)}`;
      return { describe, test: ({ ctx }) => inside(ctx.ip), why: ({ ctx }) => `${describe} (got ${ctx.ip ?? 'none'})` };
    },
  }),
  country_in: condition({
    schema: z.strictObject({
      codes: z.array(z.string().regex(/^[A-Z]{2}$/, 'must be an upper-case ISO 3166 alpha-2 code')).min(1, 'must not be empty'),
    }),
    reads: 'network',
    compile: (v) => {
      const codes = new Set(v.codes);
      const describe = `caller country in ${list(v.codes)}`;
      return {
        describe,
        test: ({ ctx }) => ctx.geo?.country !== undefined && codes.has(ctx.geo.country),
        why: ({ ctx }) => `${describe} (got ${ctx.geo?.country ?? 'none'})`,
      };
    },
  }),
  rate_limit: condition({
    schema: z.strictObject({ max: z.number().int().min(1), window: duration, per: z.enum(PER_SCOPES).optional() }),
    reads: 'counter',
    compile: (v) => {
      const windowMs = parseDuration(v.window);
      const per = v.per ?? 'principal+action';
      const describe = `allows ${v.max} call${v.max === 1 ? '' : 's'} per ${formatDuration(windowMs)}${per === 'principal+action' ? '' : ` (per ${per})`}`;
      return {
        describe,
        test: ({ ctx }) => per !== 'session' || ctx.sessionId !== undefined,
        why: () => `${describe} (a per-session limit needs a session)`,
        charge: (input, policyName, position) => ({
          key: JSON.stringify(['rate', policyName, position, per, ...scopeKey(per, input)]),
          amount: 1,
          max: v.max,
          windowMs,
        }),
      };
    },
  }),
  budget: condition({
    schema: z.strictObject({ field, max: z.number().positive(), window: duration, per: z.enum(PER_SCOPES).optional() }),
    reads: 'counter',
    compile: (v) => {
      const windowMs = parseDuration(v.window);
      const per = v.per ?? 'principal+action';
      const read = compileField(v.field);
      const describe = `allows a total ${v.field} of ${v.max} per ${formatDuration(windowMs)}${per === 'principal+action' ? '' : ` (per ${per})`}`;
      return {
        describe,
        // A negative amount would refill the budget: only finite amounts >= 0 can be charged.
        test: ({ ctx }) => {
          const n = numeric(read(ctx.params));
          return n !== undefined && n >= 0 && (per !== 'session' || ctx.sessionId !== undefined);
        },
        why: ({ ctx }) => `${describe} (${budgetProblem(v.field, read(ctx.params), per === 'session' && ctx.sessionId === undefined)})`,
        charge: (input, policyName, position) => ({
          key: JSON.stringify(['budget', policyName, position, per, ...scopeKey(per, input)]),
          amount: numeric(read(input.ctx.params)) as number,
          max: v.max,
          windowMs,
        }),
      };
    },
  }),
  session_age_max: condition({
    schema: duration,
    reads: 'session',
    compile: (v) => {
      const maxMs = parseDuration(v);
      const describe = `session younger than ${formatDuration(maxMs)}`;
      return {
        describe,
        test: ({ session, now }) => session !== undefined && now - session.startedAt <= maxMs,
        why: ({ session, now }) =>
          session ? `${describe} (age ${formatDuration(Math.max(1, now - session.startedAt))})` : `${describe} (the call has no session)`,
      };
    },
  }),
  time_window: condition({
    schema: z.string().superRefine((v, ctx) => {
      try {
        parseTimeWindow(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
    reads: 'time',
    compile: (v) => {
      const window = parseTimeWindow(v);
      const describe = `time within ${v}`;
      return {
        describe,
        test: ({ now }) => inTimeWindow(window, now),
        why: ({ now }) => `${describe} (now ${new Date(now).toISOString()})`,
      };
    },
  }),
};

export type LeafConditionKey = keyof typeof CONDITIONS;
/** A leaf condition as a policy holds it once loaded: `{ <key>: <the value its schema gives> }`. */
export type LeafCondition = { [K in LeafConditionKey]: { [P in K]: z.output<(typeof CONDITIONS)[K]['schema']> } }[LeafConditionKey];
export type ConditionSpec = LeafCondition | { any_of: ConditionSpec[] } | { not: ConditionSpec };

export const COMBINATORS = ['any_of', 'not'] as const;
/** Every key a condition table may have, in suggestion order. */
export const CONDITION_KEYS: readonly string[] = [...Object.keys(CONDITIONS), ...COMBINATORS];
/** Conditions charged on permit (rate limits, budgets): permit policies only, never inside any_of/not. */
export const STATEFUL_CONDITIONS: ReadonlySet<string> = new Set(
  Object.entries(CONDITIONS).flatMap(([key, c]) => (c.reads === 'counter' ? [key] : [])),
);

export function isLeafCondition(key: string): key is LeafConditionKey {
  return Object.hasOwn(CONDITIONS, key);
}
