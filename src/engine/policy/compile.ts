import type { JsonValue, ValidContext } from '../context.ts';
import { parseDuration, formatDuration } from '../duration.ts';
import { compileGlobs } from '../glob.ts';
import { compileField } from '../json-pointer.ts';
import { inTimeWindow, parseTimeWindow } from '../conditions/time-window.ts';
import { isCanonicalPath, normaliseRoot, pathWithin } from '../conditions/path-within.ts';
import { compileHostPatterns, urlHostAllowed } from '../conditions/url-host.ts';
import { compileCidrs } from '../conditions/ip-in.ts';
import type { RateCharge, SessionState } from '../stores.ts';
import type { ConditionSpec, PER_SCOPES } from './schema.ts';

/** What a condition sees. `session` is present when the call names a session. */
export interface EvalInput {
  ctx: ValidContext;
  now: number;
  session: SessionState | undefined;
}

export interface Condition {
  /** The condition's key, e.g. `param_max`. */
  key: string;
  /** Stateless part: for rate_limit/budget, only whether a charge can be formed. */
  test(input: EvalInput): boolean;
  /** What must hold, for refusal texts and `policy explain`. */
  describe: string;
  /** Why it failed for this input (slow path: refusals and explain only). */
  why(input: EvalInput): string;
  /** Stateful conditions: the counter to charge for this call. */
  charge?(input: EvalInput, policyName: string, position: number): RateCharge;
}

type Per = (typeof PER_SCOPES)[number];

// Refusal texts quote at most 80 characters: a megabyte argument is cut before it is encoded.
const show = (v: JsonValue | undefined): string =>
  (v === undefined ? 'missing' : JSON.stringify(typeof v === 'string' ? v.slice(0, 80) : v).slice(0, 80));

function numeric(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** `[...s].length <= max` without spreading a megabyte string into an array on every call. */
function codePointsAtMost(s: string, max: number): boolean {
  if (s.length <= max) return true; // never more code points than UTF-16 units
  if (s.length > 2 * max) return false; // never fewer than half as many
  let n = 0;
  for (const _ of s) if (++n > max) return false;
  return true;
}

/** Upper case or anything outside ASCII: what case-insensitive and compatibility folding can change. */
const NEEDS_FOLD = /[A-Z\u0080-\uffff]/;
const fold = (s: string): string => s.normalize('NFKC').toLowerCase();

function list(items: readonly unknown[]): string {
  return items.map((i) => JSON.stringify(i)).join(', ');
}

/**
 * Which way a condition must fail when it meets a value it cannot judge. In a permit policy an
 * unjudgeable value (a string where a number belongs, an object where a path belongs) fails the
 * condition; in a refuse policy it matches it. Either way the call is refused: `"5000"` must not
 * slip past `refuse when amount >= 1000` to a tool that coerces it back to 5000. `not` flips it.
 */
export type Polarity = 'permit' | 'refuse';

export function compileCondition(spec: ConditionSpec, polarity: Polarity = 'permit'): Condition {
  const key = Object.keys(spec)[0] as string;
  const value = (spec as Record<string, unknown>)[key];
  const build = BUILDERS[key];
  if (!build) throw new Error(`no compiler for condition ${key}`); // the schema already refused it
  return build(value as never, polarity);
}

/** A field condition's verdict on one value: true, false, or undefined when it cannot judge it. */
type Judge = (value: JsonValue) => boolean | undefined;

interface FieldOptions {
  /** The condition judges a list as a whole (a length); otherwise it judges each item. */
  wholeLists?: boolean;
  /** An allow-list that, in a permit policy, holds for a non-empty list whose every item passes. */
  listable?: boolean;
}

function fieldCondition(key: string, field: string, describe: string, judge: Judge, polarity: Polarity, opts: FieldOptions = {}): Condition {
  const read = compileField(field);
  const permit = polarity === 'permit';
  const perItem = !opts.wholeLists;
  const listable = opts.listable === true;
  return {
    key,
    describe,
    test: ({ ctx }) => {
      const x = read(ctx.params);
      if (x === undefined) return false; // a missing value proves nothing either way
      if (perItem && Array.isArray(x)) {
        if (permit) return listable && x.length > 0 && x.every((item) => judge(item) === true);
        return x.some((item) => judge(item) !== false);
      }
      const verdict = judge(x);
      return verdict === undefined ? !permit : verdict;
    },
    why: ({ ctx }) => `${describe} (got ${show(read(ctx.params))})`,
  };
}

function isScalar(x: JsonValue): boolean {
  return typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';
}

function oneOrMany(v: unknown): string[] {
  return Array.isArray(v) ? (v as string[]) : [v as string];
}

function scopeKey(per: Per, input: EvalInput): unknown[] {
  const { ctx } = input;
  switch (per) {
    case 'principal+action':
      return [ctx.principalId, ctx.actionName];
    case 'principal':
      return [ctx.principalId];
    case 'session':
      return [ctx.sessionId];
    case 'global':
      return [];
  }
}

const BUILDERS: Record<string, (value: never, polarity: Polarity) => Condition> = {
  identity_kind: (v: string | string[]) => {
    const kinds = new Set(oneOrMany(v));
    const describe = `principal kind is ${list([...kinds])}`;
    return { key: 'identity_kind', describe, test: ({ ctx }) => kinds.has(ctx.principalKind), why: ({ ctx }) => `${describe} (got "${ctx.principalKind}")` };
  },
  identity_role: (v: string | string[]) => {
    const roles = oneOrMany(v);
    const describe = `principal has role ${list(roles)}`;
    return { key: 'identity_role', describe, test: ({ ctx }) => ctx.roles.some((r) => roles.includes(r)), why: ({ ctx }) => `${describe} (has ${ctx.roles.length ? list(ctx.roles) : 'no roles'})` };
  },
  identity_id: (v: string | string[]) => {
    const match = compileGlobs(oneOrMany(v));
    const describe = `principal id matches ${list(oneOrMany(v))}`;
    return { key: 'identity_id', describe, test: ({ ctx }) => match(ctx.principalId), why: ({ ctx }) => `${describe} (got "${ctx.principalId}")` };
  },
  action: (v: string | string[]) => {
    const patterns = oneOrMany(v);
    const match = compileGlobs(patterns);
    const describe = `action matches ${list(patterns)}`;
    return { key: 'action', describe, test: ({ ctx }) => match(ctx.actionName), why: ({ ctx }) => `${describe} (got "${ctx.actionName}")` };
  },
  resource: (v: string | string[]) => {
    const match = compileGlobs(oneOrMany(v));
    const describe = `resource matches ${list(oneOrMany(v))}`;
    return { key: 'resource', describe, test: ({ ctx }) => ctx.resource !== undefined && match(ctx.resource), why: ({ ctx }) => `${describe} (got ${ctx.resource === undefined ? 'none' : `"${ctx.resource}"`})` };
  },
  param_max: (v: { field: string; max: number }, polarity: Polarity) =>
    fieldCondition('param_max', v.field, `${v.field} <= ${v.max}`, (x) => {
      const n = numeric(x);
      return n === undefined ? undefined : n <= v.max;
    }, polarity),
  param_min: (v: { field: string; min: number }, polarity: Polarity) =>
    fieldCondition('param_min', v.field, `${v.field} >= ${v.min}`, (x) => {
      const n = numeric(x);
      return n === undefined ? undefined : n >= v.min;
    }, polarity),
  param_in: (v: { field: string; values: (string | number | boolean)[] }, polarity: Polarity) => {
    const allowed = new Set<unknown>(v.values);
    return fieldCondition('param_in', v.field, `${v.field} is one of ${list(v.values)}`, (x) => (isScalar(x) ? allowed.has(x) : undefined), polarity);
  },
  param_not_in: (v: { field: string; values: (string | number | boolean)[] }, polarity: Polarity) => {
    const banned = new Set<unknown>(v.values);
    return fieldCondition('param_not_in', v.field, `${v.field} is none of ${list(v.values)}`, (x) => (isScalar(x) ? !banned.has(x) : undefined), polarity);
  },
  param_glob: (v: { field: string; pattern: string }, polarity: Polarity) => {
    const match = compileGlobs([v.pattern]);
    return fieldCondition('param_glob', v.field, `${v.field} matches "${v.pattern}"`, (x) => (typeof x === 'string' ? match(x) : undefined), polarity);
  },
  param_max_length: (v: { field: string; max: number }, polarity: Polarity) =>
    fieldCondition('param_max_length', v.field, `${v.field} is at most ${v.max} long`, (x) => {
      if (typeof x === 'string') return codePointsAtMost(x, v.max);
      return Array.isArray(x) ? x.length <= v.max : undefined;
    }, polarity, { wholeLists: true }),
  path_within: (v: { field: string; roots: string[]; exclude?: string[] }, polarity: Polarity) => {
    const roots = v.roots.map(normaliseRoot);
    // Exclusions live in the allow-list, so they hold for every item of a list (a refuse policy
    // with param_glob sees only one string field and is easy to walk around).
    const excluded = v.exclude ? compileGlobs(v.exclude) : () => false;
    const but = v.exclude ? `, none matching ${list(v.exclude)}` : '';
    // A value that is not one canonical absolute path cannot be judged (see isCanonicalPath).
    const judge = (p: string): boolean => pathWithin(p, roots) && !excluded(p);
    // The same path as a case-insensitive file system (macOS, Windows) or a tool that folds
    // compatibility forms (NFKC, Windows "best fit": U+2025, fullwidth U+FF0E dots and U+FF0F
    // slash become `..` and `/`) reads it. A path whose folded reading gets another verdict
    // (`/w/.ENV` past an exclude of `*/.env`, `/ETC/passwd` past a refuse on `/etc`) cannot be judged.
    const foldedRoots = roots.map(fold);
    const foldedExcluded = v.exclude ? compileGlobs(v.exclude.map(fold)) : () => false;
    const judgeFolded = (p: string): boolean => pathWithin(p, foldedRoots) && !foldedExcluded(p);
    // Roots or globs with upper case letters make even an all-lower-case path worth a second reading.
    const foldAlways = [...v.roots, ...(v.exclude ?? [])].some((r) => NEEDS_FOLD.test(r));
    return fieldCondition('path_within', v.field, `${v.field} is a path (or list of paths) inside ${list(roots)}${but}`, (x) => {
      if (!isCanonicalPath(x)) return undefined;
      const verdict = judge(x);
      if (!foldAlways && !NEEDS_FOLD.test(x)) return verdict;
      const folded = fold(x);
      return isCanonicalPath(folded) && judgeFolded(folded) === verdict ? verdict : undefined;
    }, polarity, { listable: true });
  },
  url_host_in: (v: { field: string; hosts: string[]; schemes?: string[] }, polarity: Polarity) => {
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
    return fieldCondition('url_host_in', v.field, `${v.field} is a ${schemes.join('/')} URL (or list of them) on ${list(v.hosts)}`, allowed, polarity, { listable: true });
  },
  ip_in: (v: { cidrs: string[] }) => {
    const inside = compileCidrs(v.cidrs);
    const describe = `caller IP in ${list(v.cidrs)}`;
    return { key: 'ip_in', describe, test: ({ ctx }) => inside(ctx.ip), why: ({ ctx }) => `${describe} (got ${ctx.ip ?? 'none'})` };
  },
  country_in: (v: { codes: string[] }) => {
    const codes = new Set(v.codes);
    const describe = `caller country in ${list(v.codes)}`;
    return { key: 'country_in', describe, test: ({ ctx }) => ctx.geo?.country !== undefined && codes.has(ctx.geo.country), why: ({ ctx }) => `${describe} (got ${ctx.geo?.country ?? 'none'})` };
  },
  session_age_max: (v: string | number) => {
    const maxMs = parseDuration(v);
    const describe = `session younger than ${formatDuration(maxMs)}`;
    return {
      key: 'session_age_max',
      describe,
      test: ({ session, now }) => session !== undefined && now - session.startedAt <= maxMs,
      why: ({ session, now }) => (session ? `${describe} (age ${formatDuration(Math.max(1, now - session.startedAt))})` : `${describe} (the call has no session)`),
    };
  },
  time_window: (v: string) => {
    const window = parseTimeWindow(v);
    const describe = `time within ${v}`;
    return { key: 'time_window', describe, test: ({ now }) => inTimeWindow(window, now), why: ({ now }) => `${describe} (now ${new Date(now).toISOString()})` };
  },
  rate_limit: (v: { max: number; window: string | number; per?: Per }) => {
    const windowMs = parseDuration(v.window);
    const per = v.per ?? 'principal+action';
    const describe = `allows ${v.max} call${v.max === 1 ? '' : 's'} per ${formatDuration(windowMs)}${per === 'principal+action' ? '' : ` (per ${per})`}`;
    return {
      key: 'rate_limit',
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
  budget: (v: { field: string; max: number; window: string | number; per?: Per }) => {
    const windowMs = parseDuration(v.window);
    const per = v.per ?? 'principal+action';
    const read = compileField(v.field);
    const describe = `allows a total ${v.field} of ${v.max} per ${formatDuration(windowMs)}${per === 'principal+action' ? '' : ` (per ${per})`}`;
    return {
      key: 'budget',
      describe,
      // A negative amount would refill the budget: only finite amounts >= 0 can be charged.
      test: ({ ctx }) => {
        const n = numeric(read(ctx.params));
        return n !== undefined && n >= 0 && (per !== 'session' || ctx.sessionId !== undefined);
      },
      why: ({ ctx }) => `${describe} (${v.field} must be a number >= 0, got ${show(read(ctx.params))})`,
      charge: (input, policyName, position) => ({
        key: JSON.stringify(['budget', policyName, position, per, ...scopeKey(per, input)]),
        amount: numeric(read(input.ctx.params)) as number,
        max: v.max,
        windowMs,
      }),
    };
  },
  any_of: (v: ConditionSpec[], polarity: Polarity) => {
    const inner = v.map((c) => compileCondition(c, polarity));
    const describe = `any of (${inner.map((c) => c.describe).join(' | ')})`;
    return { key: 'any_of', describe, test: (input) => inner.some((c) => c.test(input)), why: (input) => `none of: ${inner.map((c) => c.why(input)).join('; ')}` };
  },
  not: (v: ConditionSpec, polarity: Polarity) => {
    const inner = compileCondition(v, polarity === 'permit' ? 'refuse' : 'permit');
    const describe = `not (${inner.describe})`;
    return { key: 'not', describe, test: (input) => !inner.test(input), why: () => `${describe} (it holds)` };
  },
};
