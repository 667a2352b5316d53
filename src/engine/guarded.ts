import { randomUUID } from 'node:crypto';
import type { ActionContext, Principal } from './context.ts';
import { RefusedError } from './errors.ts';
import type { Gate } from './gate.ts';

/**
 * What `context` may add to a guarded call. The principal, the action and the params are
 * guarded()'s own: a context that could set them could call another action or act as someone else.
 */
export type GuardedContext = Partial<Omit<ActionContext, 'principalId' | 'principalKind' | 'roles' | 'actionName' | 'params'>>;

export interface GuardedOptions<A extends unknown[]> {
  /** Who calls: fixed, or computed from the arguments (e.g. a request object's user). */
  principal: Principal | ((...args: A) => Principal);
  /** What the policies and invariants judge; default none. Read once, before the check. */
  params?: (...args: A) => Record<string, unknown>;
  /** Session, ip, device, geo, resource, audience, callId... */
  context?: (...args: A) => GuardedContext;
}

const RESERVED = ['principalId', 'principalKind', 'roles', 'actionName', 'params'] as const;

/**
 * Kavach's `@guarded` for any function: the returned function asks the gate first and runs `fn`
 * only on a Permit; a Refuse rejects with RefusedError and an Invalidate with InvalidatedError,
 * and `fn` never runs. Sync and async functions alike; the wrapper always returns a promise.
 * `fn` is called without `this` (bind a method first).
 *
 * A `principal`, `params` or `context` function that throws (or a context that tries to set the
 * principal, action or params) refuses the call with INVALID_CONTEXT before the gate is asked.
 */
export function guarded<A extends unknown[], R>(
  gate: Gate,
  action: string,
  fn: (...args: A) => R | Promise<R>,
  opts: GuardedOptions<A>,
): (...args: A) => Promise<R> {
  // Programmer errors surface where the wrapper is made, not on the first call in production.
  if (typeof action !== 'string' || action.length === 0) throw new TypeError('guarded: action must be a non-empty string');
  if (typeof fn !== 'function') throw new TypeError('guarded: fn must be a function');
  if (opts === null || typeof opts !== 'object') throw new TypeError('guarded: options with a principal are required');
  const { principal, params, context } = opts;
  if (principal === null || (typeof principal !== 'object' && typeof principal !== 'function')) {
    throw new TypeError('guarded: principal must be a Principal or a function returning one');
  }
  if (params !== undefined && typeof params !== 'function') throw new TypeError('guarded: params must be a function');
  if (context !== undefined && typeof context !== 'function') throw new TypeError('guarded: context must be a function');

  return async (...args: A): Promise<R> => {
    const ctx = buildContext(action, args, principal, params, context);
    await gate.check(ctx);
    return fn(...args);
  };
}

function buildContext<A extends unknown[]>(
  action: string,
  args: A,
  principal: GuardedOptions<A>['principal'],
  params: GuardedOptions<A>['params'],
  context: GuardedOptions<A>['context'],
): ActionContext {
  const who = ask('principal', () => (typeof principal === 'function' ? principal(...args) : principal));
  if (who === null || typeof who !== 'object') refuse('principal() must return a Principal');
  const extra = context ? ask('context', () => context(...args)) : undefined;
  if (extra !== undefined && (extra === null || typeof extra !== 'object')) refuse('context() must return an object');
  for (const key of RESERVED) {
    if (extra && Object.hasOwn(extra, key))
      refuse(`context() may not set ${key}: guarded() fixes the principal, the action and the params`);
  }
  // The gate validates everything below (unknown fields, types, sizes) and refuses what is wrong.
  const ctx: ActionContext = { ...(extra as GuardedContext | undefined), principalId: who.id, principalKind: who.kind, actionName: action };
  if (who.roles !== undefined) ctx.roles = who.roles;
  if (params) ctx.params = ask('params', () => params(...args));
  return ctx;
}

function ask<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    return refuse(`${what}() threw: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** A refusal made before the gate was asked (so it has its own evaluation id and no audit record). */
function refuse(reason: string): never {
  throw new RefusedError({ kind: 'refuse', evaluationId: randomUUID(), code: 'INVALID_CONTEXT', evaluator: 'guarded', reason });
}
