import type { ActionContext } from './context.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { PolicyError } from './errors.ts';
import { compileGlobs, type Matcher } from './glob.ts';
import { compileField } from './json-pointer.ts';
import type { EvalInput } from './policy/compile.ts';
import { parseInvariant } from './policy/load.ts';
import type { FileInvariantSpec } from './policy/schema.ts';

/**
 * Hard limits no policy can lift. Code invariants (GateOptions.invariants) survive reloads;
 * `[[invariant]]` blocks reload with their file. `actions` (globs) scopes one to some actions;
 * by default it applies to every call. Missing or non-finite values fail.
 */
export type InvariantSpec = { name: string; description?: string; actions?: string[] } & (
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
    const { actions, check, ...rest } = spec as InvariantSpec & { check?: unknown; actions?: unknown };
    if (actions !== undefined && (!Array.isArray(actions) || actions.length === 0 || !actions.every((a) => typeof a === 'string' && a.length > 0))) {
      throw new PolicyError(`${path}.actions`, 'must be a non-empty array of action globs');
    }
    const appliesTo = actions ? compileGlobs(actions as string[]) : () => true;
    let invariant: Invariant;
    if (check !== undefined) {
      if (typeof check !== 'function') throw new PolicyError(`${path}.check`, 'must be a function');
      if (typeof rest.name !== 'string' || rest.name.length === 0) throw new PolicyError(`${path}.name`, 'must be a non-empty string');
      if (Object.keys(rest).some((k) => k !== 'name' && k !== 'description')) throw new PolicyError(path, 'a check invariant takes only name, description, actions and check');
      invariant = predicateInvariant(rest.name, check as (ctx: ActionContext) => boolean, appliesTo);
    } else {
      invariant = fromSpec(parseInvariant(rest, path), appliesTo);
    }
    if (names.has(invariant.name)) throw new PolicyError(`${path}.name`, `duplicate invariant name "${invariant.name}"`);
    names.add(invariant.name);
    return invariant;
  });
}

/** File invariants parsed by the policy loader. */
export function compileFileInvariants(specs: readonly FileInvariantSpec[]): Invariant[] {
  return specs.map((spec) => fromSpec(spec, () => true));
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
        if (typeof v !== 'number' || !Number.isFinite(v)) return `'${name}' needs ${field} as a number (got ${v === undefined ? 'missing' : JSON.stringify(v)})`;
        if (isMax ? v > limit : v < limit) return `'${name}': ${field} ${v} is ${isMax ? 'above' : 'below'} the hard limit ${limit}`;
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
    const allowed = compileGlobs(spec.allowed_actions);
    return { name, appliesTo, violation: ({ ctx }) => (allowed(ctx.actionName) ? undefined : `'${name}': '${ctx.actionName}' is not an allowed action`) };
  }
  const blocked = compileGlobs(spec.blocked_actions);
  return { name, appliesTo, violation: ({ ctx }) => (blocked(ctx.actionName) ? `'${name}': '${ctx.actionName}' is a blocked action` : undefined) };
}
