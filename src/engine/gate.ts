import { randomUUID } from 'node:crypto';
import { ContextError, validateContext, type ActionContext, type ValidContext } from './context.ts';
import { BEHAVIOUR_WINDOW_MS, detectDrift, resolveDrift, type ResolvedDrift } from './drift.ts';
import { InvalidatedError, PolicyError, RefusedError } from './errors.ts';
import { InMemoryBus, type InvalidationBus, type InvalidationMessage } from './invalidation.ts';
import { compileFileInvariants, compileInvariants, type Invariant } from './invariants.ts';
import { bindingOf, newRequest } from './approvals/binding.ts';
import { approvalEvent } from './approvals/events.ts';
import { InMemoryApprovalStore } from './approvals/memory-store.ts';
import { Approvals } from './approvals/service.ts';
import type { ApprovalStore, AuditSink, GateEvent, OutcomeEvent, PermitIssuer } from './ports.ts';
import { pointerSteps } from './redact.ts';
import { warningSink } from './warnings.ts';
import { approvalRefusal, checkOpened, holdOf, subjectOf, type ApprovalHold } from './gate/approval-step.ts';
import { refuse, type Decision, type Epoch } from './gate/decision.ts';
import { failureVerdict, recordEvent, verdictEvent, type Warn } from './gate/events.ts';
import { Epochs } from './gate/recheck.ts';
import { isPromise, storeError, wellFormedSession, withStore } from './gate/store-calls.ts';
import { timed, traceEvaluation } from './gate/telemetry.ts';
import { permitRequest } from './gate/permit-request.ts';
import { chargeIdFor } from './gate/charge-id.ts';
import { Refunds } from './gate/refunds.ts';
import type { EvaluateOptions, GateOptions } from './gate/options.ts';
import type { EvalInput } from './policy/compile.ts';
import { parsePolicyDocument, parsePolicyText, readPolicyFile, sniffFormat, type PolicyFormat } from './policy/load.ts';
import type { PolicySetSpec } from './policy/schema.ts';
import { PolicySet, refusedBy, type CompiledPolicy } from './policy/policy-set.ts';
import { screenOutput, type ScreenResult } from './screen/screen-output.ts';
import { gateTelemetry, type GateTelemetry } from '../telemetry/gate-telemetry.ts';
import {
  InMemoryRateStore,
  InMemoryReplayStore,
  InMemorySessionStore,
  type MaybePromise,
  type RateStore,
  type ReplayStore,
  type SessionState,
  type SessionStore,
} from './stores.ts';
import type { InvalidationScope, PermitVerdict, RefuseVerdict, Verdict } from './verdict.ts';

export type { EvaluateOptions, GateOptions };

/** A permit the caller can rely on (from `check`). */
export type CheckedPermit = PermitVerdict;

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
  private readonly warn: Warn;
  private readonly telemetry: GateTelemetry | undefined;
  private readonly unwatchApprovals: (() => void) | undefined;
  private closed = false;
  private readonly epochs = new Epochs();
  private readonly approvalStore: ApprovalStore;
  private readonly approvalRedact: readonly (readonly string[])[];
  private readonly refunds: Refunds;
  /** Requests waiting for people, and the way people answer them (DESIGN §11). */
  readonly approvals: Approvals;

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
    this.warn = warningSink(opts.onWarning);
    this.approvalStore = opts.stores?.approval ?? new InMemoryApprovalStore();
    this.approvalRedact = (opts.approvalRedact ?? []).map(pointerSteps);
    // What both keep of the gate: its clock, its record of events and its warnings.
    const events = { clock: this.clock, record: (e: GateEvent) => this.record(e), warn: this.warn };
    this.approvals = new Approvals({ store: this.approvalStore, audit: this.audit, ...events });
    this.refunds = new Refunds({ rate: this.rate, approvals: this.approvalStore, ...events });
    this.unsubscribe = this.bus.subscribe((message) => void this.onRemoteInvalidation(message));
    this.telemetry = opts.telemetry ? gateTelemetry(opts.telemetry) : undefined;
    this.unwatchApprovals = this.telemetry?.watchApprovals(async () => (await this.approvals.list({ status: 'pending' })).length);
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
    const { text, format } = await readPolicyFile(path);
    return Gate.fromSpec(parsePolicyText(text, format), opts);
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
    let spec: PolicySetSpec;
    try {
      spec = typeof source === 'string' ? parsePolicyText(source, format ?? sniffFormat(source)) : parsePolicyDocument(source);
      const next = new PolicySet(spec);
      const invariants = compileFileInvariants(spec.invariants);
      this.policySet = next;
      this.fileInvariants = invariants;
      this.epochs.policiesReloaded();
    } catch (err) {
      this.record({ type: 'policy_reload', time: this.clock(), ok: false, policies: this.policySet.size, error: (err as Error).message });
      if (err instanceof PolicyError) throw err;
      throw new PolicyError('', (err as Error).message);
    }
    this.record({ type: 'policy_reload', time: this.clock(), ok: true, policies: this.policySet.size });
  }

  /** Reloads from a file, by extension. */
  async reloadFile(path: string): Promise<void> {
    const { text, format } = await readPolicyFile(path);
    this.reload(text, format);
  }

  /** Invalidates sessions now, here and (through the bus) at every other replica. */
  async invalidate(scope: InvalidationScope, reason = 'invalidated by operator'): Promise<void> {
    const now = this.clock();
    this.epochs.noteInvalidation(scope, reason);
    await this.sessions.invalidate(scope, reason, now);
    await this.bus.publish({ scope, reason, at: now, origin: this.id });
    this.record({ type: 'invalidation', time: now, scope, reason, remote: false });
  }

  /**
   * Screens what a tool returned with the `[[screen]]` blocks in force for `ctx.actionName`
   * (DESIGN §13): redacted output, findings (never values), and `blocked` when the caller must
   * withhold the result (the proxy refuses it OUTPUT_BLOCKED). Pure and synchronous; no screen
   * for the action costs one map lookup.
   */
  screen<T>(ctx: Pick<ActionContext, 'actionName'>, output: T): ScreenResult<T> {
    return screenOutput(this.policySet.screens, ctx, output);
  }

  /**
   * Records what became of a permitted call's result in the gate's audit log (an `outcome`
   * record: the adapters write one when screening found something). Best effort, like the gate's
   * other non-verdict events: a failed append is a warning, never a throw.
   */
  recordOutcome(outcome: Omit<OutcomeEvent, 'type' | 'time'> & { time?: number }): void {
    this.record({ ...outcome, type: 'outcome', time: outcome.time ?? this.clock() });
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
  evaluate(input: ActionContext, opts?: EvaluateOptions): Promise<Verdict> {
    // A throw (a broken clock, say) is a rejection, as when every step was async.
    try {
      return Promise.resolve(this.evaluateNow(input, opts));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * `evaluate`, answered synchronously when every step is (in-memory stores, no signer, no audit
   * log, no telemetry): the proxy forwards a permitted call in the turn it read it. Bad input and
   * failing stores are refusals here too; only a throwing clock throws.
   */
  evaluateNow(input: ActionContext, opts?: EvaluateOptions): Verdict | Promise<Verdict> {
    // Without telemetry this is one property read: the call is evaluated as if none existed.
    const telemetry = this.telemetry;
    return telemetry === undefined
      ? this.evaluateCall(input, opts, undefined)
      : traceEvaluation(telemetry, input, opts?.traceContext, (traceId) => this.evaluateCall(input, opts, traceId));
  }

  private evaluateCall(input: ActionContext, opts: EvaluateOptions | undefined, traceId: string | undefined): MaybePromise<Verdict> {
    const observe = this.observeOnly || opts?.observe === true;
    const epoch: Epoch = this.epochs.now();
    const evaluationId = randomUUID();
    const now = this.clock();
    let ctx: ValidContext;
    try {
      if (this.closed)
        return this.finish(refuse(evaluationId, 'STORE_UNAVAILABLE', 'gate', 'the gate is closed'), undefined, input, now, traceId);
      ctx = validateContext(input);
    } catch (err) {
      const reason = err instanceof ContextError ? err.message : 'context could not be read';
      return this.finish(refuse(evaluationId, 'INVALID_CONTEXT', 'context', reason), undefined, input, now, traceId);
    }
    let pending: MaybePromise<Decision>;
    try {
      pending = this.decide(ctx, evaluationId, now, observe);
    } catch (err) {
      pending = { verdict: failureVerdict(err, evaluationId, this.warn) };
    }
    if (!isPromise(pending)) return this.decided(pending, ctx, now, observe, epoch, traceId);
    return pending.then(
      (decision) => this.decided(decision, ctx, now, observe, epoch, traceId),
      (err: unknown) => this.decided({ verdict: failureVerdict(err, evaluationId, this.warn) }, ctx, now, observe, epoch, traceId),
    );
  }

  /** After the decision: nothing more to do (the common case), or signing, observe mode and the record. */
  private decided(
    decision: Decision,
    ctx: ValidContext,
    now: number,
    observe: boolean,
    epoch: Epoch,
    traceId: string | undefined,
  ): MaybePromise<Verdict> {
    if (!observe && !this.signer && !this.audit) {
      if (decision.verdict.kind !== 'permit' || !this.epochs.movedSince(epoch)) return decision.verdict;
      return this.recheck(decision, ctx, epoch).then((late) => late ?? decision.verdict);
    }
    return this.conclude(decision, ctx, now, observe, epoch, traceId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.unwatchApprovals?.();
  }

  // -------------------------------------------------------------------------------------------

  private decide(ctx: ValidContext, evaluationId: string, now: number, observe: boolean): MaybePromise<Decision> {
    const sessionId = ctx.sessionId;
    if (sessionId === undefined) return this.decideWithSession(ctx, evaluationId, now, undefined, observe);
    return withStore(
      () =>
        this.sessions.observe({
          principalId: ctx.principalId,
          sessionId,
          ip: ctx.ip,
          device: ctx.device,
          geo: ctx.geo,
          now,
          behaviourWindowMs: BEHAVIOUR_WINDOW_MS,
          recentLimit: this.drift?.recentLimit,
        }),
      (observed) => {
        if (observed.invalid === true) {
          return {
            verdict: refuse(
              evaluationId,
              'SESSION_INVALID',
              'session',
              typeof observed.reason === 'string' ? observed.reason : 'the session was invalidated',
            ),
          };
        }
        // Anything else but a described session would skip drift and the ownership check: a store failure.
        if (observed.invalid !== false || !wellFormedSession(observed.session))
          storeError(new Error('the session store gave a malformed answer'));
        return this.decideWithSession(ctx, evaluationId, now, observed.session, observe);
      },
    );
  }

  /** Drift first (a drifting session is invalidated whatever the policy says), then policy, invariants, limits. */
  private decideWithSession(
    ctx: ValidContext,
    evaluationId: string,
    now: number,
    session: SessionState | undefined,
    observe: boolean,
  ): MaybePromise<Decision> {
    if (session) {
      if (session.principalId !== ctx.principalId) {
        return { verdict: refuse(evaluationId, 'SESSION_INVALID', 'session', 'the session belongs to another principal') };
      }
      if (this.drift) {
        const drift = detectDrift(ctx, session, this.drift, now);
        if (drift.level === 'violation')
          return this.invalidateSession(ctx.sessionId as string, evaluationId, `${drift.detector} drift: ${drift.reason}`, now, observe);
        if (drift.level === 'warn')
          return { verdict: refuse(evaluationId, 'DRIFT_DETECTED', 'drift', `${drift.detector} drift: ${drift.reason}`) };
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
    return this.resolveSteps(plan.steps, 0, input, evaluationId, undefined, undefined, observe);
  }

  /** The last policy step: refuse, permit, ask for approval, or check-and-charge rate limits and budgets, in order. */
  private resolveSteps(
    steps: readonly CompiledPolicy[],
    from: number,
    input: EvalInput,
    evaluationId: string,
    knownChargeId: string | undefined,
    limited: RefuseVerdict | undefined,
    observe: boolean,
  ): MaybePromise<Decision> {
    // One step per call: a policy whose limits are spent hands the rest of the list to the next call.
    const policy = steps[from];
    if (policy) {
      if (policy.effect === 'refuse') {
        const verdict = refuse(evaluationId, 'POLICY_DENIED', 'policy', refusedBy(policy, input.ctx));
        verdict.policy = policy.name;
        return { verdict };
      }
      if (policy.effect === 'approve') return this.approveStep(policy, input, evaluationId, knownChargeId, limited, observe);
      if (policy.stateful.length === 0) return { verdict: { kind: 'permit', evaluationId, policy: policy.name }, input };
      return this.charge(policy, input, evaluationId, knownChargeId, limited, undefined, (chargeId, first) =>
        this.resolveSteps(steps, from + 1, input, evaluationId, chargeId, first, observe),
      );
    }
    return { verdict: limited ?? refuse(evaluationId, 'NO_POLICY_MATCH', 'policy', `no policy permits '${input.ctx.actionName}'`) };
  }

  /**
   * Checks and charges a matched policy's rate limits and budgets: a permit when they fit,
   * otherwise `onLimited` with the refusal so far (the earliest retry of every limited policy).
   */
  private charge(
    policy: CompiledPolicy,
    input: EvalInput,
    evaluationId: string,
    knownChargeId: string | undefined,
    limited: RefuseVerdict | undefined,
    hold: ApprovalHold | undefined,
    onLimited: (chargeId: string, refusal: RefuseVerdict) => MaybePromise<Decision>,
  ): MaybePromise<Decision> {
    const verdict: PermitVerdict = { kind: 'permit', evaluationId, policy: policy.name };
    if (hold?.consumed) verdict.approval = { id: hold.id };
    const approval = hold ? { approval: hold } : {};
    if (policy.stateful.length === 0) return { verdict, input, ...approval };
    const charges = policy.stateful.map(({ condition, position }) =>
      (condition.charge as NonNullable<typeof condition.charge>)(input, policy.name, position),
    );
    // Hashed only here: calls that meet no rate limit or budget never pay for hashing their arguments.
    const chargeId = knownChargeId ?? chargeIdFor(input.ctx, evaluationId);
    return withStore(
      () => this.rate.checkAndCharge(charges, chargeId, input.now),
      (result): MaybePromise<Decision> => {
        if (result.admitted === true) {
          // A retried callId charged nothing now: refunding it would take back the first call's charge.
          return result.repeated === true
            ? { verdict, input, ...approval }
            : { verdict, charged: { charges, chargeId }, input, ...approval };
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
        return onLimited(chargeId, first);
      },
    );
  }

  /**
   * An approve policy matched: the call's request is made (or found), and only a granted one lets
   * the call on to its limits. A use taken here is given back if anything after refuses.
   */
  private approveStep(
    policy: CompiledPolicy,
    input: EvalInput,
    evaluationId: string,
    knownChargeId: string | undefined,
    limited: RefuseVerdict | undefined,
    observe: boolean,
  ): MaybePromise<Decision> {
    const { ctx, now } = input;
    const binding = bindingOf(ctx, policy);
    // Observe mode looks only: it neither asks anybody nor spends a grant.
    const fresh = observe ? undefined : newRequest(ctx, policy, binding, this.approvalRedact, now);
    return withStore(
      () => this.approvalStore.open(binding.key, now, fresh),
      (answer): MaybePromise<Decision> => {
        const opened = checkOpened(answer, fresh === undefined);
        if (opened.expired !== undefined)
          this.record(approvalEvent(subjectOf(ctx, policy, binding, opened.expired), 'expired', 'expired', now));
        if (opened.outcome === 'created' && fresh)
          this.record(approvalEvent(fresh, 'requested', 'pending', now, { evaluationId, expiresAt: fresh.expiresAt }));
        if (opened.outcome !== 'used' && opened.outcome !== 'granted')
          return { verdict: approvalRefusal(evaluationId, policy, ctx, opened) };
        const hold = holdOf(opened, ctx, policy, binding);
        const giveBackAfter = async (err: unknown): Promise<never> => {
          await this.refunds.giveBack(hold);
          throw err;
        };
        let charged: MaybePromise<Decision>;
        try {
          charged = this.charge(policy, input, evaluationId, knownChargeId, limited, hold, async (_chargeId, refusal) => {
            await this.refunds.giveBack(hold);
            return { verdict: refusal };
          });
        } catch (err) {
          return giveBackAfter(err);
        }
        return isPromise(charged) ? charged.catch(giveBackAfter) : charged;
      },
    );
  }

  private async invalidateSession(
    sessionId: string,
    evaluationId: string,
    reason: string,
    now: number,
    observe: boolean,
  ): Promise<Decision> {
    const scope: InvalidationScope = { type: 'session', sessionId };
    // Observe mode reports the invalidation but must not act on it.
    if (!observe) {
      this.epochs.noteInvalidation(scope, reason);
      await withStore(
        () => this.sessions.invalidate(scope, reason, now),
        () => undefined,
        false,
      );
      try {
        await this.bus.publish({ scope, reason, at: now, origin: this.id });
      } catch (err) {
        this.warn(`could not publish invalidation of session ${sessionId}: ${String(err)}`);
      }
    }
    return { verdict: { kind: 'invalidate', evaluationId, scope, evaluator: 'drift', reason } };
  }

  /** Observe mode, signing and the audit record: the steps after the decision. */
  private async conclude(
    decision: Decision,
    ctx: ValidContext,
    now: number,
    observe: boolean,
    epoch: Epoch,
    traceId: string | undefined,
  ): Promise<Verdict> {
    let verdict = decision.verdict;
    if (verdict.kind === 'permit' && this.signer) {
      const { signer } = this;
      const request = permitRequest(ctx, verdict, now, this.permitTtlMs);
      try {
        const issued = await timed(this.telemetry, 'signed', () => signer.issue(request));
        verdict = { ...verdict, permit: issued.token, permitId: issued.id };
      } catch (err) {
        await this.refunds.refund(decision);
        verdict = refuse(
          verdict.evaluationId,
          'SIGNING_FAILED',
          'signer',
          `the permit could not be signed: ${(err as Error)?.message ?? String(err)}`,
        );
      }
    }
    // Signing takes milliseconds (seconds behind a queue): a kill switch, reload or invalidation
    // in the meantime must not be outlived by a permit handed out after it.
    if (verdict.kind === 'permit' && this.epochs.movedSince(epoch)) verdict = (await this.recheck(decision, ctx, epoch)) ?? verdict;
    // Observe mode lets a refused call through unsigned; a call enforcement would have permitted
    // keeps its real, signed permit, so tools that insist on permits work while policies are tuned.
    if (observe) {
      verdict =
        verdict.kind === 'permit'
          ? { ...verdict, observed: decision.verdict }
          : { kind: 'permit', evaluationId: verdict.evaluationId, observed: verdict };
    }
    return this.finish(verdict, decision, ctx, now, traceId);
  }

  /** Records the verdict; a permit that cannot be recorded is refused (nothing runs unrecorded). */
  private async finish(
    verdict: Verdict,
    decision: Decision | undefined,
    ctx: ActionContext | unknown,
    now: number,
    traceId: string | undefined,
  ): Promise<Verdict> {
    if (!this.audit) return verdict;
    const audit = this.audit;
    try {
      await timed(this.telemetry, 'committed', async () => {
        const hold = decision?.approval;
        if (verdict.kind === 'permit' && verdict.approval !== undefined && hold?.consumed) {
          await audit.append(
            approvalEvent(hold.subject, 'used', hold.usesLeft === 0 ? 'used' : 'granted', now, { evaluationId: verdict.evaluationId }),
          );
        }
        await audit.append(verdictEvent(verdict, ctx, decision !== undefined, now, traceId));
      });
      return verdict;
    } catch (err) {
      this.warn(`audit append failed: ${String(err)}`);
      if (verdict.kind !== 'permit') return verdict;
      if (decision) await this.refunds.refund(decision);
      return refuse(verdict.evaluationId, 'STORE_UNAVAILABLE', 'audit', 'the audit log is unavailable, so nothing is permitted');
    }
  }

  /**
   * A permit decided before a reload or an invalidation that came while it was being concluded:
   * the refusal it gets now (its charge taken back), or undefined when it still stands. Limits are
   * not charged again: the call was admitted by the policies in force when it was charged.
   */
  private async recheck(decision: Decision, ctx: ValidContext, epoch: Epoch): Promise<RefuseVerdict | undefined> {
    let late: RefuseVerdict | undefined;
    try {
      late = this.epochs.lateRefusal(decision, ctx, epoch, this.policySet, this.fileInvariants);
    } catch (err) {
      late = failureVerdict(err, decision.verdict.evaluationId, this.warn);
    }
    if (late) await this.refunds.refund(decision);
    return late;
  }

  private record(event: GateEvent): void {
    recordEvent(this.audit, event, this.warn);
  }

  private async onRemoteInvalidation(message: InvalidationMessage): Promise<void> {
    if (message.origin === this.id || this.closed) return;
    this.epochs.noteInvalidation(message.scope, message.reason);
    try {
      await this.sessions.invalidate(message.scope, message.reason, message.at);
      this.record({ type: 'invalidation', time: this.clock(), scope: message.scope, reason: message.reason, remote: true });
    } catch (err) {
      this.warn(`could not apply a remote invalidation: ${String(err)}`);
    }
  }
}
