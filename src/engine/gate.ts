import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { hashArgs } from './canonical-json.ts';
import { ContextError, storedGeoIsWellFormed, validateContext, type ActionContext, type ValidContext } from './context.ts';
import { BEHAVIOUR_WINDOW_MS, detectDrift, resolveDrift, type DriftOptions, type ResolvedDrift } from './drift.ts';
import { InvalidatedError, PolicyError, RefusedError } from './errors.ts';
import { InMemoryBus, type InvalidationBus, type InvalidationMessage } from './invalidation.ts';
import { compileFileInvariants, compileInvariants, type Invariant, type InvariantSpec } from './invariants.ts';
import type { AuditSink, GateEvent, PermitIssuer } from './ports.ts';
import type { EvalInput } from './policy/compile.ts';
import { parsePolicyDocument, parsePolicyText, sniffFormat, type PolicyFormat } from './policy/load.ts';
import type { PolicySetSpec } from './policy/schema.ts';
import { PolicySet, type CompiledPolicy } from './policy/policy-set.ts';
import {
  InMemoryRateStore, InMemoryReplayStore, InMemorySessionStore,
  type MaybePromise, type RateCharge, type RateStore, type ReplayStore, type SessionState, type SessionStore,
} from './stores.ts';
import type { InvalidationScope, PermitVerdict, RefuseCode, RefuseVerdict, Verdict } from './verdict.ts';

export interface GateOptions {
  /** Permanent: survive reload. */
  invariants?: InvariantSpec[];
  /** Permits are signed when present. */
  signer?: PermitIssuer;
  /** Every verdict recorded when present. */
  audit?: AuditSink;
  /** Evaluate and record, always permit, with the real verdict in `observed` (only real permits are signed). */
  observeOnly?: boolean;
  drift?: DriftOptions | false;
  stores?: { rate?: RateStore; session?: SessionStore; replay?: ReplayStore };
  bus?: InvalidationBus;
  /** ms since epoch. */
  clock?: () => number;
  /** Default 30 s. */
  permitTtlMs?: number;
}

export interface EvaluateOptions {
  /** Observe this call only: report the real verdict, permit anyway, act on nothing. */
  observe?: boolean;
}

/** A permit the caller can rely on (from `check`). */
export type CheckedPermit = PermitVerdict;

class StoreFailure extends Error {}

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}

function storeError(err: unknown): never {
  throw new StoreFailure((err as Error)?.message ?? String(err), { cause: err });
}

/**
 * Runs a store call and hands its answer to `next`, synchronously when the store answered
 * synchronously (in-memory stores cost no promise hop). Any throw or rejection of the store
 * becomes a StoreFailure (STORE_UNAVAILABLE); errors from `next` pass through unchanged.
 */
function withStore<T, R>(call: () => MaybePromise<T>, next: (value: T) => MaybePromise<R>, expectAnswer = true): MaybePromise<R> {
  let result: MaybePromise<T>;
  try {
    result = call();
  } catch (err) {
    storeError(err);
  }
  if (isPromise(result)) return result.then((value) => answered(value, next, expectAnswer), storeError);
  return answered(result, next, expectAnswer);
}

function answered<T, R>(value: T, next: (value: T) => MaybePromise<R>, expectAnswer: boolean): MaybePromise<R> {
  // A store that answers with nothing is as broken as one that throws.
  if (expectAnswer && (value === null || typeof value !== 'object')) storeError(new Error('the store gave a malformed answer'));
  return next(value);
}

interface Decision {
  verdict: Verdict;
  /** What was charged, so it can be refunded if a later step refuses. */
  charged?: { charges: RateCharge[]; chargeId: string };
  /** What a permit was decided on, so it can be judged again if the policies change before it is handed out. */
  input?: EvalInput;
}

/** Where the gate stood when an evaluation began: which policies, how many invalidations. */
interface Epoch {
  policies: number;
  invalidations: number;
}

/** Invalidations remembered for calls still being evaluated (a call older than all of them fails closed). */
const INVALIDATION_LOG = 1024;

const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);
const optString = (x: unknown): boolean => x === undefined || typeof x === 'string';

/**
 * A session store's answer must describe a session, or drift and ownership cannot be judged.
 * (On the hot path: no closures in here, which tsx would name on every call.)
 */
function wellFormedSession(s: unknown): s is SessionState {
  if (s === null || typeof s !== 'object') return false;
  const v = s as Record<string, unknown>;
  return typeof v.principalId === 'string' && finite(v.startedAt) && finite(v.actionCount) && finite(v.recentCalls)
    && optString(v.originIp) && optString(v.originDevice)
    && (v.originGeo === undefined || storedGeoIsWellFormed(v.originGeo));
}

/**
 * The execution gate: every attempted action gets Permit, Refuse or Invalidate. Never throws
 * from `evaluate`; every failure is a Refuse with a code.
 */
export class Gate {
  readonly id = randomUUID();
  private policySet: PolicySet;
  private fileInvariants: Invariant[];
  private readonly codeInvariants: Invariant[];
  private readonly rate: RateStore;
  private readonly sessions: SessionStore;
  readonly replay: ReplayStore;
  private readonly bus: InvalidationBus;
  private readonly unsubscribe: () => void;
  private readonly drift: ResolvedDrift | undefined;
  private readonly clock: () => number;
  private readonly permitTtlMs: number;
  private readonly observeOnly: boolean;
  private readonly signer: PermitIssuer | undefined;
  private readonly audit: AuditSink | undefined;
  private closed = false;
  /** Bumped by every successful reload. */
  private policyVersion = 0;
  /** Invalidations this gate made or heard of, numbered; the log keeps the latest INVALIDATION_LOG. */
  private invalidationCount = 0;
  private readonly invalidationLog: { scope: InvalidationScope; reason: string }[] = [];

  private constructor(policySet: PolicySet, fileInvariants: Invariant[], opts: GateOptions) {
    this.policySet = policySet;
    this.fileInvariants = fileInvariants;
    this.codeInvariants = compileInvariants(opts.invariants ?? [], 'invariants');
    this.rate = opts.stores?.rate ?? new InMemoryRateStore();
    this.sessions = opts.stores?.session ?? new InMemorySessionStore();
    this.replay = opts.stores?.replay ?? new InMemoryReplayStore();
    this.bus = opts.bus ?? new InMemoryBus();
    this.drift = resolveDrift(opts.drift);
    this.clock = opts.clock ?? Date.now;
    const ttl = opts.permitTtlMs ?? 30_000;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new TypeError('permitTtlMs must be a positive number');
    this.permitTtlMs = ttl;
    this.observeOnly = opts.observeOnly === true;
    this.signer = opts.signer;
    this.audit = opts.audit;
    this.unsubscribe = this.bus.subscribe((message) => void this.onRemoteInvalidation(message));
  }

  static fromDict(policy: object, opts: GateOptions = {}): Gate {
    return Gate.fromSpec(parsePolicyDocument(policy), opts);
  }

  static fromJson(text: string, opts: GateOptions = {}): Gate {
    return Gate.fromSpec(parsePolicyText(text, 'json'), opts);
  }

  static fromToml(text: string, opts: GateOptions = {}): Gate {
    return Gate.fromSpec(parsePolicyText(text, 'toml'), opts);
  }

  private static fromSpec(spec: PolicySetSpec, opts: GateOptions): Gate {
    return new Gate(new PolicySet(spec), compileFileInvariants(spec.invariants), opts);
  }

  /** `.toml` or `.json` by extension. */
  static async fromFile(path: string, opts: GateOptions = {}): Promise<Gate> {
    const text = await readFile(path, 'utf8');
    return formatOf(path) === 'json' ? Gate.fromJson(text, opts) : Gate.fromToml(text, opts);
  }

  /** How many policies are in force. */
  get policyCount(): number {
    return this.policySet.size;
  }

  /** The compiled policies in force (read-only; for listing and explain). */
  get policies(): PolicySet {
    return this.policySet;
  }

  /**
   * Replaces the policy set (and file invariants). A source that fails to load throws PolicyError
   * and leaves the previous set in force. `reload('')` is the kill switch: no policy, every call refused.
   */
  reload(source: string | object, format?: PolicyFormat): void {
    let spec;
    try {
      spec = typeof source === 'string' ? parsePolicyText(source, format ?? sniffFormat(source)) : parsePolicyDocument(source);
      const next = new PolicySet(spec);
      const invariants = compileFileInvariants(spec.invariants);
      this.policySet = next;
      this.fileInvariants = invariants;
      this.policyVersion++;
    } catch (err) {
      this.record({ type: 'policy_reload', time: this.clock(), ok: false, policies: this.policySet.size, error: (err as Error).message });
      if (err instanceof PolicyError) throw err;
      throw new PolicyError('', (err as Error).message);
    }
    this.record({ type: 'policy_reload', time: this.clock(), ok: true, policies: this.policySet.size });
  }

  /** Reloads from a file, by extension. */
  async reloadFile(path: string): Promise<void> {
    this.reload(await readFile(path, 'utf8'), formatOf(path));
  }

  /** Invalidates sessions now, here and (through the bus) at every other replica. */
  async invalidate(scope: InvalidationScope, reason = 'invalidated by operator'): Promise<void> {
    const now = this.clock();
    this.noteInvalidation(scope, reason);
    await this.sessions.invalidate(scope, reason, now);
    await this.bus.publish({ scope, reason, at: now, origin: this.id });
    this.record({ type: 'invalidation', time: now, scope, reason, remote: false });
  }

  /** Like evaluate, but throws RefusedError / InvalidatedError unless permitted. */
  async check(ctx: ActionContext): Promise<PermitVerdict> {
    const verdict = await this.evaluate(ctx);
    if (verdict.kind === 'permit') return verdict;
    if (verdict.kind === 'refuse') throw new RefusedError(verdict);
    throw new InvalidatedError(verdict);
  }

  /**
   * The verdict for one attempted action. Never throws: bad input is a Refuse INVALID_CONTEXT.
   * `{ observe: true }` treats this one call as in observe mode (an adapter in observe mode in
   * front of an enforcing gate): the real verdict is reported in `observed`, nothing is invalidated.
   */
  async evaluate(input: ActionContext, opts?: EvaluateOptions): Promise<Verdict> {
    const observe = this.observeOnly || opts?.observe === true;
    const epoch: Epoch = { policies: this.policyVersion, invalidations: this.invalidationCount };
    const evaluationId = randomUUID();
    const now = this.clock();
    let ctx: ValidContext;
    try {
      if (this.closed) return this.finish(refuse(evaluationId, 'STORE_UNAVAILABLE', 'gate', 'the gate is closed'), undefined, input, now);
      ctx = validateContext(input);
    } catch (err) {
      const reason = err instanceof ContextError ? err.message : 'context could not be read';
      return this.finish(refuse(evaluationId, 'INVALID_CONTEXT', 'context', reason), undefined, input, now);
    }
    let decision: Decision;
    try {
      const pending = this.decide(ctx, evaluationId, now, observe);
      decision = isPromise(pending) ? await pending : pending;
    } catch (err) {
      decision = { verdict: failureVerdict(err, evaluationId) };
    }
    if (!observe && !this.signer && !this.audit) {
      if (decision.verdict.kind !== 'permit' || !this.movedSince(epoch)) return decision.verdict;
      return (await this.recheck(decision, ctx, epoch)) ?? decision.verdict;
    }
    return this.conclude(decision, ctx, now, observe, epoch);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
  }

  // -------------------------------------------------------------------------------------------

  private decide(ctx: ValidContext, evaluationId: string, now: number, observe: boolean): MaybePromise<Decision> {
    const sessionId = ctx.sessionId;
    if (sessionId === undefined) return this.decideWithSession(ctx, evaluationId, now, undefined, observe);
    return withStore(
      () => this.sessions.observe({
        principalId: ctx.principalId, sessionId, ip: ctx.ip, device: ctx.device, geo: ctx.geo, now, behaviourWindowMs: BEHAVIOUR_WINDOW_MS, recentLimit: this.drift?.recentLimit,
      }),
      (observed) => {
        if (observed.invalid === true) {
          return { verdict: refuse(evaluationId, 'SESSION_INVALID', 'session', typeof observed.reason === 'string' ? observed.reason : 'the session was invalidated') };
        }
        // Anything else but a described session would skip drift and the ownership check: a store failure.
        if (observed.invalid !== false || !wellFormedSession(observed.session)) storeError(new Error('the session store gave a malformed answer'));
        return this.decideWithSession(ctx, evaluationId, now, observed.session, observe);
      },
    );
  }

  /** Drift first (a drifting session is invalidated whatever the policy says), then policy, invariants, limits. */
  private decideWithSession(ctx: ValidContext, evaluationId: string, now: number, session: SessionState | undefined, observe: boolean): MaybePromise<Decision> {
    if (session) {
      if (session.principalId !== ctx.principalId) {
        return { verdict: refuse(evaluationId, 'SESSION_INVALID', 'session', 'the session belongs to another principal') };
      }
      if (this.drift) {
        const drift = detectDrift(ctx, session, this.drift, now);
        if (drift.level === 'violation') return this.invalidateSession(ctx.sessionId as string, evaluationId, `${drift.detector} drift: ${drift.reason}`, now, observe);
        if (drift.level === 'warn') return { verdict: refuse(evaluationId, 'DRIFT_DETECTED', 'drift', `${drift.detector} drift: ${drift.reason}`) };
      }
    }
    const input: EvalInput = { ctx, now, session };
    const plan = this.policySet.plan(input);
    if (plan.kind === 'refuse') {
      const verdict = refuse(evaluationId, plan.code, 'policy', plan.reason);
      if (plan.policy !== undefined) verdict.policy = plan.policy;
      return { verdict };
    }
    for (const list of [this.codeInvariants, this.fileInvariants]) {
      for (const invariant of list) {
        if (!invariant.appliesTo(ctx.actionName)) continue;
        const violation = invariant.violation(input);
        if (violation !== undefined) return { verdict: refuse(evaluationId, 'INVARIANT_VIOLATION', 'invariant', violation) };
      }
    }
    return this.resolveSteps(plan.steps, 0, input, evaluationId, undefined, undefined);
  }

  /**
   * The id a charge is recorded under: a callId binds to who, what, on which resource, for which
   * audience, in which session and with which arguments; a call differing in any of them is another call.
   */
  private static chargeIdFor(ctx: ValidContext, evaluationId: string): string {
    if (ctx.callId === undefined) return evaluationId;
    return hashArgs({ c: ctx.callId, p: ctx.principalId, a: ctx.actionName, x: ctx.params, r: ctx.resource, u: ctx.audience, s: ctx.sessionId });
  }

  /** The last policy step: refuse, permit, or check-and-charge rate limits and budgets, in order. */
  private resolveSteps(
    steps: readonly CompiledPolicy[], from: number, input: EvalInput, evaluationId: string, knownChargeId: string | undefined, limited: RefuseVerdict | undefined,
  ): MaybePromise<Decision> {
    for (let i = from; i < steps.length; i++) {
      const policy = steps[i] as CompiledPolicy;
      if (policy.effect === 'refuse') {
        const verdict = refuse(evaluationId, 'POLICY_DENIED', 'policy', `'${policy.name}' refuses '${input.ctx.actionName}'`);
        verdict.policy = policy.name;
        return { verdict };
      }
      if (policy.stateful.length === 0) return { verdict: { kind: 'permit', evaluationId, policy: policy.name }, input };
      const charges = policy.stateful.map(({ condition, position }) => (condition.charge as NonNullable<typeof condition.charge>)(input, policy.name, position));
      // Hashed only here: calls that meet no rate limit or budget never pay for hashing their arguments.
      const chargeId = knownChargeId ?? Gate.chargeIdFor(input.ctx, evaluationId);
      return withStore(
        () => this.rate.checkAndCharge(charges, chargeId, input.now),
        (result): MaybePromise<Decision> => {
          if (result.admitted === true) {
            const verdict: PermitVerdict = { kind: 'permit', evaluationId, policy: policy.name };
            // A retried callId charged nothing now: refunding it would take back the first call's charge.
            return result.repeated === true ? { verdict, input } : { verdict, charged: { charges, chargeId }, input };
          }
          if (result.admitted !== false) storeError(new Error('the rate store gave a malformed answer'));
          let first = limited;
          if (!first) {
            const failed = policy.stateful[result.index]?.condition;
            first = refuse(evaluationId, 'RATE_LIMITED', 'policy', `'${policy.name}' ${failed?.describe ?? 'is rate limited'}`);
            first.policy = policy.name;
            if (result.retryAfterMs !== undefined) first.retryAfterMs = result.retryAfterMs;
          } else if (result.retryAfterMs !== undefined && (first.retryAfterMs === undefined || result.retryAfterMs < first.retryAfterMs)) {
            // The call fits as soon as any one of its limited policies has room again.
            first.retryAfterMs = result.retryAfterMs;
          }
          return this.resolveSteps(steps, i + 1, input, evaluationId, chargeId, first);
        },
      );
    }
    return { verdict: limited ?? refuse(evaluationId, 'NO_POLICY_MATCH', 'policy', `no policy permits '${input.ctx.actionName}'`) };
  }

  private async invalidateSession(sessionId: string, evaluationId: string, reason: string, now: number, observe: boolean): Promise<Decision> {
    const scope: InvalidationScope = { type: 'session', sessionId };
    // Observe mode reports the invalidation but must not act on it.
    if (!observe) {
      this.noteInvalidation(scope, reason);
      await withStore(() => this.sessions.invalidate(scope, reason, now), () => undefined, false);
      try {
        await this.bus.publish({ scope, reason, at: now, origin: this.id });
      } catch (err) {
        process.stderr.write(`kavach: could not publish invalidation of session ${sessionId}: ${String(err)}\n`);
      }
    }
    return { verdict: { kind: 'invalidate', evaluationId, scope, evaluator: 'drift', reason } };
  }

  /** Observe mode, signing and the audit record: the steps after the decision. */
  private async conclude(decision: Decision, ctx: ValidContext, now: number, observe: boolean, epoch: Epoch): Promise<Verdict> {
    let verdict = decision.verdict;
    if (verdict.kind === 'permit' && this.signer) {
      try {
        const issued = await this.signer.issue({
          principalId: ctx.principalId, principalKind: ctx.principalKind, action: ctx.actionName, args: ctx.params,
          sessionId: ctx.sessionId, evaluationId: verdict.evaluationId, audience: ctx.audience, issuedAt: now, expiresAt: now + this.permitTtlMs,
        });
        verdict = { ...verdict, permit: issued.token, permitId: issued.id };
      } catch (err) {
        await this.refund(decision);
        verdict = refuse(verdict.evaluationId, 'SIGNING_FAILED', 'signer', `the permit could not be signed: ${(err as Error)?.message ?? String(err)}`);
      }
    }
    // Signing takes milliseconds (seconds behind a queue): a kill switch, reload or invalidation
    // in the meantime must not be outlived by a permit handed out after it.
    if (verdict.kind === 'permit' && this.movedSince(epoch)) verdict = (await this.recheck(decision, ctx, epoch)) ?? verdict;
    // Observe mode lets a refused call through unsigned; a call enforcement would have permitted
    // keeps its real, signed permit, so tools that insist on permits work while policies are tuned.
    if (observe) {
      verdict = verdict.kind === 'permit'
        ? { ...verdict, observed: decision.verdict }
        : { kind: 'permit', evaluationId: verdict.evaluationId, observed: verdict };
    }
    return this.finish(verdict, decision, ctx, now);
  }

  /** Records the verdict; a permit that cannot be recorded is refused (nothing runs unrecorded). */
  private async finish(verdict: Verdict, decision: Decision | undefined, ctx: ActionContext | unknown, now: number): Promise<Verdict> {
    if (!this.audit) return verdict;
    // A context that failed validation may be hostile (throwing getters, proxies): read it safely.
    const c = decision ? (ctx as Partial<ActionContext>) : safeSummary(ctx);
    const shown = verdict.kind === 'permit' && verdict.observed ? verdict.observed : verdict;
    const event: GateEvent = {
      type: 'verdict',
      time: now,
      evaluationId: verdict.evaluationId,
      principal: typeof c.principalId === 'string' ? c.principalId : '(invalid)',
      principalKind: typeof c.principalKind === 'string' ? c.principalKind : undefined,
      action: typeof c.actionName === 'string' ? c.actionName : undefined,
      verdict: shown.kind,
      args: decision ? c.params ?? {} : null,
    };
    if (typeof c.resource === 'string') event.resource = c.resource;
    if (typeof c.sessionId === 'string') event.session = c.sessionId;
    if (typeof c.callId === 'string') event.callId = c.callId;
    if (shown.kind === 'refuse') Object.assign(event, { code: shown.code, evaluator: shown.evaluator, reason: shown.reason, policy: shown.policy });
    if (shown.kind === 'invalidate') Object.assign(event, { code: 'SESSION_INVALID', evaluator: shown.evaluator, reason: shown.reason });
    if (shown.kind === 'permit' && shown.policy !== undefined) event.policy = shown.policy;
    if (verdict.kind === 'permit' && verdict.permitId !== undefined) event.permit = verdict.permitId;
    if (verdict.kind === 'permit' && verdict.observed) event.observed = true;
    try {
      await this.audit.append(event);
      return verdict;
    } catch (err) {
      process.stderr.write(`kavach: audit append failed: ${String(err)}\n`);
      if (verdict.kind !== 'permit') return verdict;
      if (decision) await this.refund(decision);
      return refuse(verdict.evaluationId, 'STORE_UNAVAILABLE', 'audit', 'the audit log is unavailable, so nothing is permitted');
    }
  }

  private movedSince(epoch: Epoch): boolean {
    return this.policyVersion !== epoch.policies || this.invalidationCount !== epoch.invalidations;
  }

  /** Remembers an invalidation for the calls now in flight; the session store remembers it for later ones. */
  private noteInvalidation(scope: InvalidationScope, reason: string): void {
    this.invalidationCount++;
    this.invalidationLog.push({ scope, reason });
    if (this.invalidationLog.length > INVALIDATION_LOG) this.invalidationLog.splice(0, this.invalidationLog.length - INVALIDATION_LOG);
  }

  /**
   * A permit decided before a reload or an invalidation that came while it was being concluded:
   * the refusal it gets now (its charge taken back), or undefined when it still stands. Limits are
   * not charged again: the call was admitted by the policies in force when it was charged.
   */
  private async recheck(decision: Decision, ctx: ValidContext, epoch: Epoch): Promise<RefuseVerdict | undefined> {
    let late: RefuseVerdict | undefined;
    try {
      late = this.lateRefusal(decision, ctx, epoch);
    } catch (err) {
      late = failureVerdict(err, decision.verdict.evaluationId);
    }
    if (late) await this.refund(decision);
    return late;
  }

  private lateRefusal(decision: Decision, ctx: ValidContext, epoch: Epoch): RefuseVerdict | undefined {
    const evaluationId = decision.verdict.evaluationId;
    const newer = this.invalidationCount - epoch.invalidations;
    if (newer > 0 && ctx.sessionId !== undefined) {
      if (newer > this.invalidationLog.length) {
        return refuse(evaluationId, 'STORE_UNAVAILABLE', 'session', 'too many invalidations while the call was evaluated to tell whether its session survived; retry');
      }
      for (const { scope, reason } of this.invalidationLog.slice(-newer)) {
        // A scope this gate cannot read (a bus delivering junk) covers every session: fail closed.
        const covers = scope?.type === 'global'
          || (scope?.type === 'session' && scope.sessionId === ctx.sessionId)
          || (scope?.type === 'principal' && scope.principalId === ctx.principalId)
          || (scope?.type !== 'session' && scope?.type !== 'principal');
        if (covers) return refuse(evaluationId, 'SESSION_INVALID', 'session', typeof reason === 'string' ? reason : 'the session was invalidated');
      }
    }
    if (this.policyVersion === epoch.policies) return undefined;
    const input = decision.input;
    if (!input) return refuse(evaluationId, 'NO_POLICY_MATCH', 'policy', 'the policies changed while the call was evaluated');
    const plan = this.policySet.plan(input);
    if (plan.kind === 'refuse') {
      const verdict = refuse(evaluationId, plan.code, 'policy', plan.reason);
      if (plan.policy !== undefined) verdict.policy = plan.policy;
      return verdict;
    }
    const first = plan.steps[0] as CompiledPolicy;
    if (first.effect === 'refuse') {
      const verdict = refuse(evaluationId, 'POLICY_DENIED', 'policy', `'${first.name}' refuses '${ctx.actionName}'`);
      verdict.policy = first.name;
      return verdict;
    }
    for (const invariant of this.fileInvariants) {
      if (!invariant.appliesTo(ctx.actionName)) continue;
      const violation = invariant.violation(input);
      if (violation !== undefined) return refuse(evaluationId, 'INVARIANT_VIOLATION', 'invariant', violation);
    }
    return undefined;
  }

  private async refund(decision: Decision | undefined): Promise<void> {
    if (!decision?.charged) return;
    const { charges, chargeId } = decision.charged;
    // Once only: observe mode can meet a signing failure, a late refusal and an audit failure in one
    // call, and a store's refund need not be idempotent (a second one could take back another call's charge).
    decision.charged = undefined;
    try {
      await this.rate.refund(charges, chargeId);
    } catch (err) {
      process.stderr.write(`kavach: refund failed (limit stays charged): ${String(err)}\n`);
    }
  }

  /** Best-effort record of a non-verdict event: a sink that throws must not make reload or invalidate throw. */
  private record(event: GateEvent): void {
    if (!this.audit) return;
    const failed = (err: unknown) => void process.stderr.write(`kavach: audit append failed: ${String(err)}\n`);
    try {
      Promise.resolve(this.audit.append(event)).catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  private async onRemoteInvalidation(message: InvalidationMessage): Promise<void> {
    if (message.origin === this.id || this.closed) return;
    this.noteInvalidation(message.scope, message.reason);
    try {
      await this.sessions.invalidate(message.scope, message.reason, message.at);
      this.record({ type: 'invalidation', time: this.clock(), scope: message.scope, reason: message.reason, remote: true });
    } catch (err) {
      process.stderr.write(`kavach: could not apply a remote invalidation: ${String(err)}\n`);
    }
  }
}

/** The identifying strings of an unvalidated context, each read under try/catch. */
function safeSummary(input: unknown): Partial<ActionContext> {
  const out: Record<string, string> = {};
  for (const key of ['principalId', 'principalKind', 'actionName', 'sessionId', 'callId', 'resource']) {
    try {
      const value = (input as Record<string, unknown>)[key];
      if (typeof value === 'string') out[key] = value.slice(0, 256);
    } catch {
      // unreadable: leave it out
    }
  }
  return out as Partial<ActionContext>;
}

function formatOf(path: string): PolicyFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.toml') return 'toml';
  throw new PolicyError('', `policy file must end in .toml or .json: ${path}`);
}

function refuse(evaluationId: string, code: RefuseCode, evaluator: string, reason: string): RefuseVerdict {
  return { kind: 'refuse', evaluationId, code, evaluator, reason };
}

function failureVerdict(err: unknown, evaluationId: string): RefuseVerdict {
  if (err instanceof StoreFailure) return refuse(evaluationId, 'STORE_UNAVAILABLE', 'store', `state store unavailable: ${err.message}`);
  process.stderr.write(`kavach: evaluation failed: ${(err as Error)?.stack ?? String(err)}\n`);
  return refuse(evaluationId, 'INVALID_CONTEXT', 'gate', 'the call could not be evaluated');
}
