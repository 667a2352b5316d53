import type { ActionContext } from './context.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { PolicyError } from './errors.ts';
import { compileGlobsAs, type Matcher } from './glob.ts';
import { compileField } from './json-pointer.ts';
import type { EvalInput } from './policy/compile.ts';
import { kindOf } from './policy/condition.ts';
import { parseInvariant } from './policy/load.ts';
import type { FileInvariantSpec } from './policy/schema.ts';

/**
 * Hard limits no policy can lift. Code invariants (GateOptions.invariants) survive reloads;
 * `[[invariant]]` blocks reload with their file. `actions` (globs) scopes one to some actions;
 * by default it applies to every call. Missing or non-finite values fail.
 * Kavach's tuple `["hard_cap", "amount", 50000]` is a param_max (see InvariantTuple).
 */
export type InvariantSpec = InvariantObjectSpec | InvariantTuple;

/**
 * Kavach's shorthand `(name, field, max)`: a param_max on every action. It is the only tuple the
 * seed defines (its bindings type invariants as `Vec<(String, String, f64)>`), so there is no min form.
 */
export type InvariantTuple = readonly [name: string, field: string, max: number];

export type InvariantObjectSpec = { name: string; description?: string; actions?: string[] } & (
  | { param_max: { field: string; max: number } }
  | { param_min: { field: string; min: number } }
  | { max_actions_per_session: number }
  | { max_session_age: string | number }
  | { allowed_actions: string[] }
  | { blocked_actions: string[] }
  | { check: (ctx: ActionContext) => boolean }
);

export interface Invariant {
  name: string;
  appliesTo: Matcher;
  /** Undefined when it holds; otherwise why not. */
  violation(input: EvalInput): string | undefined;
}

export function compileInvariants(specs: readonly InvariantSpec[], origin: string): Invariant[] {
  const names = new Set<string>();
  return specs.map((spec, i) => {
    const path = `${origin}[${i}]`;
    if (spec === null || typeof spec !== 'object') throw new PolicyError(path, 'an invariant must be an object');
    if (Array.isArray(spec)) return named(fromFileSpec(parseInvariant(spec, path)), names, `${path}[0]`);
    const { check, ...rest } = spec as InvariantObjectSpec & { check?: unknown };
    let invariant: Invariant;
    if (check !== undefined) {
      if (typeof check !== 'function') throw new PolicyError(`${path}.check`, 'must be a function');
      const { name, description: _description, actions, ...extra } = rest as { name?: unknown; description?: unknown; actions?: unknown };
      if (typeof name !== 'string' || name.length === 0) throw new PolicyError(`${path}.name`, 'must be a non-empty string');
      if (Object.keys(extra).length > 0) throw new PolicyError(path, 'a check invariant takes only name, description, actions and check');
      invariant = predicateInvariant(
        name,
        check as (ctx: ActionContext) => boolean,
        actionsMatcher(parseInvariant({ name, actions, max_actions_per_session: 1 }, path).actions),
      );
    } else {
      invariant = fromFileSpec(parseInvariant(rest, path));
    }
    return named(invariant, names, `${path}.name`);
  });
}

function named(invariant: Invariant, names: Set<string>, path: string): Invariant {
  if (names.has(invariant.name)) throw new PolicyError(path, `duplicate invariant name "${invariant.name}"`);
  names.add(invariant.name);
  return invariant;
}

/** File invariants parsed by the policy loader. */
export function compileFileInvariants(specs: readonly FileInvariantSpec[]): Invariant[] {
  return specs.map(fromFileSpec);
}

/**
 * Invariants only ever refuse, so their patterns take the broader reading (glob.ts): `actions`
 * and `blocked_actions` reach Kavach's bare prefix too. `allowed_actions` is the one list that
 * lets calls through, so it takes the narrower one.
 */
function actionsMatcher(actions: readonly string[] | undefined): Matcher {
  return actions ? compileGlobsAs(actions, 'broad') : () => true;
}

function fromFileSpec(spec: FileInvariantSpec): Invariant {
  return fromSpec(spec, actionsMatcher(spec.actions));
}

function predicateInvariant(name: string, check: (ctx: ActionContext) => boolean, appliesTo: Matcher): Invariant {
  return {
    name,
    appliesTo,
    violation: ({ ctx }) => {
      try {
        // The predicate gets a deep copy: it cannot change what the gate decides on.
        return check(structuredClone(ctx)) === true ? undefined : `'${name}' does not hold`;
      } catch (err) {
        return `'${name}' failed: ${(err as Error)?.message ?? String(err)}`;
      }
    },
  };
}

function fromSpec(spec: FileInvariantSpec, appliesTo: Matcher): Invariant {
  const name = spec.name;
  if ('param_max' in spec || 'param_min' in spec) {
    const isMax = 'param_max' in spec;
    const { field } = isMax ? spec.param_max : spec.param_min;
    const limit = isMax ? spec.param_max.max : spec.param_min.min;
    const read = compileField(field);
    return {
      name,
      appliesTo,
      violation: ({ ctx }) => {
        const v = read(ctx.params);
        if (typeof v !== 'number' || !Number.isFinite(v)) return `'${name}' needs ${field} as a number (it is ${kindOf(v)})`;
        // The reason names the field, never its value: it is audited even where arguments are not.
        if (isMax ? v > limit : v < limit) return `'${name}': ${field} is ${isMax ? 'above' : 'below'} the hard limit ${limit}`;
        return undefined;
      },
    };
  }
  if ('max_actions_per_session' in spec) {
    const max = spec.max_actions_per_session;
    return {
      name,
      appliesTo,
      violation: ({ session }) => {
        if (!session) return `'${name}' needs a session (at most ${max} actions per session)`;
        return session.actionCount > max ? `'${name}': session reached its limit of ${max} actions` : undefined;
      },
    };
  }
  if ('max_session_age' in spec) {
    const maxMs = parseDuration(spec.max_session_age);
    return {
      name,
      appliesTo,
      violation: ({ session, now }) => {
        if (!session) return `'${name}' needs a session (at most ${formatDuration(maxMs)} old)`;
        return now - session.startedAt > maxMs ? `'${name}': session is older than ${formatDuration(maxMs)}` : undefined;
      },
    };
  }
  if ('allowed_actions' in spec) {
    const allowed = compileGlobsAs(spec.allowed_actions, 'narrow');
    return {
      name,
      appliesTo,
      violation: ({ ctx }) => (allowed(ctx.actionName) ? undefined : `'${name}': '${ctx.actionName}' is not an allowed action`),
    };
  }
  const blocked = compileGlobsAs(spec.blocked_actions, 'broad');
  return {
    name,
    appliesTo,
    violation: ({ ctx }) => (blocked(ctx.actionName) ? `'${name}': '${ctx.actionName}' is a blocked action` : undefined),
  };
}
