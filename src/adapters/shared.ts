import { randomUUID } from 'node:crypto';
import type { ActionContext, Principal } from '../engine/context.ts';
import type { Gate } from '../engine/gate.ts';
import type { MaybePromise } from '../engine/stores.ts';
import { warningSink } from '../engine/warnings.ts';
import { formatRefusal } from '../engine/refusal.ts';
import type { CallMemory } from './call-memory.ts';
import type { InvalidateVerdict, OutputBlockedVerdict, RefuseVerdict, Verdict } from '../engine/verdict.ts';
import type { ScreenReport } from './screening.ts';

/**
 * What every framework adapter shares: turning one attempted tool call into an ActionContext,
 * asking the gate, and producing the one refusal text models see. No framework imports here.
 */

/** A value, or a function of the framework's run context that yields it. */
export type FromRun<T, RunContext> = T | ((run: RunContext) => MaybePromise<T | undefined>);

/**
 * Only `evaluate` is needed, so tests and wrappers can pass anything gate-shaped. With `screen`
 * (a Gate has it) what a permitted tool returns is screened too (DESIGN §13), and with
 * `recordOutcome` what screening found goes to the gate's audit log.
 */
export type GateLike = Pick<Gate, 'evaluate'> & Partial<Pick<Gate, 'screen' | 'recordOutcome'>>;

/** Where the call comes from: feeds drift detection and resource/audience conditions. */
export type CallEnvironment = Pick<
  ActionContext,
  'ip' | 'device' | 'geo' | 'originIp' | 'originDevice' | 'originGeo' | 'resource' | 'audience'
>;

export interface AdapterOptions<RunContext = unknown> {
  /** Who acts. Taken from the host application (a value or the run context), never from model output. */
  principal: FromRun<Principal, RunContext>;
  sessionId?: FromRun<string, RunContext>;
  /** IP, device, geo, resource, audience for this call. */
  environment?: FromRun<CallEnvironment, RunContext>;
  /** Default: the tool name. */
  actionName?: string | ((toolName: string) => string);
  /** `observe`: evaluate and report every call but let the tool run anyway. Default `enforce`. */
  mode?: 'enforce' | 'observe';
  /** Called once per evaluated call, after the verdict and before the tool runs. */
  onDecision?: (decision: GateDecision) => void | Promise<void>;
  /**
   * Called when result screening (`[[screen]]` blocks) found something in what a tool returned:
   * where and how often, never the value; `withheld` when a block-mode screen withheld it.
   */
  onScreen?: (report: ScreenReport) => void | Promise<void>;
  /**
   * Told what the model is not: why a call could not be evaluated (it is refused), an
   * `onDecision` that threw, a tool that cannot be gated. Default: stderr.
   */
  onWarning?: (message: string) => void;
}

/** One attempted tool call, as the adapter saw it. */
export interface ToolCallAttempt<RunContext> {
  toolName: string;
  /** The arguments as the tool would receive them. Non-objects are wrapped as `{ input }`. */
  args: unknown;
  /** The framework's tool-call id; the gate charges a callId once. */
  callId?: string | undefined;
  run: RunContext;
}

export type DeniedVerdict = RefuseVerdict | InvalidateVerdict;

export type GateDecision = {
  toolName: string;
  actionName: string;
  callId: string | undefined;
  /** The arguments as the gate saw them (absent when they could not be read as JSON). */
  params?: Record<string, unknown>;
  mode: 'enforce' | 'observe';
} & (
  | { allowed: true; verdict: Verdict /** Observe mode: what enforcement would have shown the model. */; refusal?: string }
  | { allowed: false; verdict: DeniedVerdict; refusal: string }
);

/**
 * One evaluation per tool call across a framework's approval check (`ask`: evaluate and hand the
 * decision on) and its execution check (`run`: use the decision handed for this exact call, else
 * evaluate). See call-memory.ts.
 */
export interface Handoff {
  memory: CallMemory;
  role: 'ask' | 'run';
}

/**
 * Thrown by adapters whose framework turns a tool error into the text the model sees: a refused
 * call, or (OUTPUT_BLOCKED) a permitted call whose result a block-mode screen withheld.
 */
export class ToolCallRefused extends Error {
  readonly verdict: DeniedVerdict | OutputBlockedVerdict;
  constructor(verdict: DeniedVerdict | OutputBlockedVerdict) {
    super(formatRefusal(verdict));
    this.name = 'ToolCallRefused';
    this.verdict = verdict;
  }
}

function adapterRefusal(evaluator: string, reason: string): RefuseVerdict {
  return { kind: 'refuse', evaluationId: randomUUID(), code: 'INVALID_CONTEXT', evaluator, reason };
}

/** The value of a FromRun option for this run. */
export async function resolve<T, R>(source: FromRun<T, R> | undefined, run: R): Promise<T | undefined> {
  if (typeof source === 'function') return (source as (run: R) => MaybePromise<T | undefined>)(run);
  return source;
}

/** Tool arguments as plain JSON, the shape a tool receives over the wire. */
export function toParams(args: unknown): Record<string, unknown> {
  if (args === undefined || args === null) return {};
  const json: unknown = JSON.parse(JSON.stringify(args));
  if (json !== null && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
  return { input: json };
}

export function actionNameFor(opts: Pick<AdapterOptions, 'actionName'>, toolName: string): string {
  const { actionName } = opts;
  if (typeof actionName === 'function') return actionName(toolName);
  return actionName ?? toolName;
}

/**
 * Asks the gate about one tool call. Never throws: a missing principal, arguments that are not
 * JSON, or a gate that throws all come back as a refusal (fail closed, in observe mode too).
 */
export async function decideToolCall<R>(
  gate: GateLike,
  opts: AdapterOptions<R>,
  attempt: ToolCallAttempt<R>,
  handoff?: Handoff,
): Promise<GateDecision> {
  const mode = opts.mode ?? 'enforce';
  let actionName = attempt.toolName;
  let params: Record<string, unknown> | undefined;
  const base = () => ({ toolName: attempt.toolName, actionName, callId: attempt.callId, mode, ...(params ? { params } : {}) });
  const deny = (verdict: DeniedVerdict): GateDecision => ({ ...base(), allowed: false, verdict, refusal: formatRefusal(verdict) });

  let decision: GateDecision;
  try {
    actionName = actionNameFor(opts, attempt.toolName);
    try {
      params = toParams(attempt.args);
    } catch {
      params = undefined;
    }
    const outcome = await evaluateAttempt(gate, opts, attempt, actionName, params, mode, base, deny, handoff);
    // A decision handed over from the approval check was reported there.
    if (outcome.handed) return outcome.decision;
    decision = outcome.decision;
  } catch (err) {
    warningSink(opts.onWarning)(`tool call '${attempt.toolName}' could not be evaluated: ${(err as Error)?.message ?? String(err)}`);
    decision = deny(adapterRefusal('gate', 'the call could not be evaluated'));
  }
  await report(opts, decision);
  return decision;
}

/**
 * The ActionContext the gate is asked about for one attempted call, or the refusal when there is
 * none to build (no principal, arguments that are not JSON). Approval helpers build the same
 * context to find the request a call made.
 */
export async function contextFor<R>(
  opts: AdapterOptions<R>,
  attempt: ToolCallAttempt<R>,
  actionName: string,
  params: Record<string, unknown> | undefined,
): Promise<{ ctx: ActionContext } | { refusal: RefuseVerdict }> {
  let principal: Principal | undefined;
  try {
    principal = await resolve(opts.principal, attempt.run);
  } catch {
    return { refusal: adapterRefusal('adapter', 'the principal could not be resolved') };
  }
  if (principal === undefined || principal === null) return { refusal: adapterRefusal('adapter', 'no principal for this call') };

  if (params === undefined) return { refusal: adapterRefusal('adapter', 'the tool arguments are not JSON') };
  const sessionId = await resolve(opts.sessionId, attempt.run);
  const environment = (await resolve(opts.environment, attempt.run)) ?? {};

  const ctx: ActionContext = { principalId: principal.id, principalKind: principal.kind, actionName, params };
  if (principal.roles !== undefined) ctx.roles = principal.roles;
  if (sessionId !== undefined) ctx.sessionId = sessionId;
  if (attempt.callId !== undefined && attempt.callId !== '') ctx.callId = attempt.callId;
  for (const key of ['ip', 'device', 'geo', 'originIp', 'originDevice', 'originGeo', 'resource', 'audience'] as const) {
    if (environment[key] !== undefined) (ctx as unknown as Record<string, unknown>)[key] = environment[key];
  }
  return { ctx };
}

async function evaluateAttempt<R>(
  gate: GateLike,
  opts: AdapterOptions<R>,
  attempt: ToolCallAttempt<R>,
  actionName: string,
  params: Record<string, unknown> | undefined,
  mode: 'enforce' | 'observe',
  base: () => Omit<GateDecision, 'allowed' | 'verdict' | 'refusal'>,
  deny: (v: DeniedVerdict) => GateDecision,
  handoff: Handoff | undefined,
): Promise<{ decision: GateDecision; handed?: true }> {
  const built = await contextFor(opts, attempt, actionName, params);
  if ('refusal' in built) return { decision: deny(built.refusal) };
  const { ctx } = built;
  if (handoff?.role === 'run') {
    const handed = handoff.memory.take(ctx);
    if (handed) return { decision: handed, handed: true };
  }
  const decision = await evaluateContext(gate, ctx, mode, base, deny);
  if (handoff?.role === 'ask') handoff.memory.hand(ctx, decision);
  return { decision };
}

async function evaluateContext(
  gate: GateLike,
  ctx: ActionContext,
  mode: 'enforce' | 'observe',
  base: () => Omit<GateDecision, 'allowed' | 'verdict' | 'refusal'>,
  deny: (v: DeniedVerdict) => GateDecision,
): Promise<GateDecision> {
  // In observe mode the gate itself observes this call: it reports the real verdict and acts on
  // nothing (no session invalidated, nothing broadcast), even when the gate enforces for others.
  const verdict = await gate.evaluate(ctx, mode === 'observe' ? { observe: true } : undefined);
  if (verdict.kind === 'permit' && verdict.observed && verdict.observed.kind !== 'permit') {
    return { ...base(), allowed: true, verdict: verdict.observed, refusal: formatRefusal(verdict.observed) };
  }
  if (verdict.kind === 'permit') return { ...base(), allowed: true, verdict };
  return deny(verdict);
}

async function report<R>(opts: AdapterOptions<R>, decision: GateDecision): Promise<void> {
  if (!opts.onDecision) return;
  try {
    await opts.onDecision(decision);
  } catch (err) {
    // An observer must not change the outcome; say so and carry on.
    warningSink(opts.onWarning)(`onDecision callback failed: ${(err as Error)?.message ?? String(err)}`);
  }
}

export { formatRefusal };
