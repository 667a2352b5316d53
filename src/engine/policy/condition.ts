/** What a compiled condition is, and the helpers the condition builders (conditions.ts) share. */
import type { JsonValue, ValidContext } from '../context.ts';
import { compileField } from '../json-pointer.ts';
import type { RateCharge, SessionState } from '../stores.ts';
import type { Per } from './value-schemas.ts';

/** What a condition sees. `session` is present when the call names a session. */
export interface EvalInput {
  ctx: ValidContext;
  now: number;
  session: SessionState | undefined;
}

/**
 * The part of a call a condition reads. Static analyses decide from this alone, never from a
 * condition's key: the action index (`action`), tool visibility (who calls and what), the
 * nearest-policy hint of a default deny (which failures the caller cannot change: `action`,
 * `principal`; a missing role can be granted, so `roles` is kept apart).
 */
export type ConditionReads =
  | 'action' // the action name alone
  | 'principal' // the principal's kind or id
  | 'roles' // the principal's roles
  | 'resource'
  | 'arguments'
  | 'network' // caller IP or geo
  | 'session'
  | 'time'
  | 'counter' // a rate or budget counter charged on permit: permit policies only, never nested
  | 'nested'; // any_of / not: what the conditions inside read (analysed as dynamic)

export interface Condition {
  /** The condition's key, e.g. `param_max`. */
  key: string;
  reads: ConditionReads;
  /** Stateless part: for rate_limit/budget, only whether a charge can be formed. */
  test(input: EvalInput): boolean;
  /** What must hold, for refusal texts and `policy explain`. */
  describe: string;
  /** Why it failed for this input (slow path: refusals and explain only); never an argument's value. */
  why(input: EvalInput): string;
  /**
   * Permit policies, where a condition can say it: why this call fails it, in terms the caller can
   * act on, as a clause after the policy's name (`does not allow the value of path: it is outside
   * the root "/w"`), naming the argument, never its value (see kindOf). A default-deny refusal
   * gives it instead of the whole rule (`why`).
   */
  cause?(input: EvalInput): string | undefined;
  /** Stateful conditions: the counter to charge for this call. */
  charge?(input: EvalInput, policyName: string, position: number): RateCharge;
}

/** What a builder returns; the compiler adds the key and what it reads from the table entry. */
export type ConditionBody = Omit<Condition, 'key' | 'reads'>;

/**
 * Which way a condition must fail when it meets a value it cannot judge. In a permit policy an
 * unjudgeable value (a string where a number belongs, an object where a path belongs) fails the
 * condition; in a refuse policy it matches it. Either way the call is refused: `"5000"` must not
 * slip past `refuse when amount >= 1000` to a tool that coerces it back to 5000. `not` flips it.
 * An approve policy judges values like a refuse policy (an unjudgeable `"5000"` asks a human rather
 * than riding past `param_min` to an unbounded permit) and reads globs like a permit policy (a grant
 * lets a call through, so `refund.*` asks only for `refund.<x>`).
 */
export type Polarity = 'permit' | 'refuse' | 'approve';

/**
 * Whether a condition depends only on who is calling and what (and on the resource, when one is
 * known before the call, like a listed URI): what tool-list analysis may evaluate ahead of a call.
 */
export function judgedBeforeTheCall(condition: Condition, resourceKnown: boolean): boolean {
  const { reads } = condition;
  return reads === 'principal' || reads === 'roles' || reads === 'action' || (resourceKnown && reads === 'resource');
}

/** Failures a caller cannot change course on: a policy failing one is not the nearest for a hint. */
export function fixedForTheCaller(condition: Condition): boolean {
  return condition.reads === 'action' || condition.reads === 'principal';
}

/**
 * What kind of value a call gave, never the value itself: refusal reasons reach the audit log even
 * where `[audit] record_args` is off or `redact` covers the field, so they name the argument and
 * the cause only (the caller knows what it sent).
 */
export function kindOf(v: JsonValue | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'boolean') return 'true or false';
  return typeof v === 'string' ? (v.length === 0 ? 'an empty string' : 'a string') : 'a number';
}

export function numeric(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** `[...s].length <= max` without spreading a megabyte string into an array on every call. */
export function codePointsAtMost(s: string, max: number): boolean {
  if (s.length <= max) return true; // never more code points than UTF-16 units
  if (s.length > 2 * max) return false; // never fewer than half as many
  let n = 0;
  for (const _ of s) if (++n > max) return false;
  return true;
}

/** Upper case or anything outside ASCII: what case-insensitive and compatibility folding can change. */
export const NEEDS_FOLD = /[A-Z\u0080-\uffff]/;
export const fold = (s: string): string => s.normalize('NFKC').toLowerCase();

export function list(items: readonly unknown[]): string {
  return items.map((i) => JSON.stringify(i)).join(', ');
}

export function isScalar(x: JsonValue): boolean {
  return typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';
}

/** A condition value written as one item or a list of them, as a list. */
export function asList<T>(v: T | T[]): T[] {
  return Array.isArray(v) ? v : [v];
}

/** A field condition's verdict on one value: true, false, or undefined when it cannot judge it. */
export type Judge = (value: JsonValue) => boolean | undefined;

export interface FieldOptions {
  /** The condition judges a list as a whole (a length); otherwise it judges each item. */
  wholeLists?: boolean;
  /** An allow-list that, in a permit policy, holds for a non-empty list whose every item passes. */
  listable?: boolean;
  /**
   * Why one value fails the judge, as a predicate ("is outside the root \"/w\""); undefined when
   * it passes. Gives a permit policy's condition its `cause`.
   */
  explain?: (value: JsonValue) => string | undefined;
}

/** A condition on one argument field, failing toward refusal on values it cannot judge (see Polarity). */
export function fieldCondition(field: string, describe: string, judge: Judge, polarity: Polarity, opts: FieldOptions = {}): ConditionBody {
  const read = compileField(field);
  const permit = polarity === 'permit';
  const perItem = !opts.wholeLists;
  const listable = opts.listable === true;
  const body: ConditionBody = {
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
    why: ({ ctx }) => `${describe} (${fieldWhy(field, read(ctx.params), judge, permit, perItem, listable)})`,
  };
  const explain = opts.explain;
  if (permit && explain) body.cause = ({ ctx }) => fieldCause(field, read(ctx.params), explain, perItem);
  return body;
}

/**
 * Why a field condition fails for this value, naming the argument (`amount`, `paths[1]`) and what
 * kind of value it is, never the value: see kindOf.
 */
function fieldWhy(field: string, x: JsonValue | undefined, judge: Judge, permit: boolean, perItem: boolean, listable: boolean): string {
  if (x === undefined) return `the call has no ${field}`;
  const verdict = (at: string, v: JsonValue): string => {
    const judged = judge(v);
    if (judged === undefined) return `${at} is ${kindOf(v)}, which this rule cannot judge`;
    return judged ? `${at} does` : `${at} does not`;
  };
  if (perItem && Array.isArray(x)) {
    if (!permit) return `no item of ${field} does`;
    if (!listable) return `${field} is a list`;
    if (x.length === 0) return `${field} is an empty list`;
    const i = x.findIndex((item) => judge(item) !== true);
    return i < 0 ? `${field} does` : verdict(`${field}[${i}]`, x[i] as JsonValue);
  }
  return verdict(field, x);
}

/** A permit policy's field condition failing: which argument (the first failing item of a list) and why, never its value. */
function fieldCause(
  field: string,
  x: JsonValue | undefined,
  explain: (value: JsonValue) => string | undefined,
  perItem: boolean,
): string | undefined {
  if (x === undefined) return `needs ${field}, and the call has none`;
  if (perItem && Array.isArray(x)) {
    if (x.length === 0) return `does not allow the value of ${field}: it is an empty list`;
    for (let i = 0; i < x.length; i++) {
      const problem = explain(x[i] as JsonValue);
      if (problem !== undefined) return `does not allow the value of ${field}[${i}]: it ${problem}`;
    }
    return undefined;
  }
  const problem = explain(x);
  return problem === undefined ? undefined : `does not allow the value of ${field}: it ${problem}`;
}

/** The counter key parts that say whose counter a charge goes to. */
export function scopeKey(per: Per, input: EvalInput): unknown[] {
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
