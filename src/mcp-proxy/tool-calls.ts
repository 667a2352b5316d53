import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { OutcomeEntry } from '../audit/entry.ts';
import { randomUUID } from 'node:crypto';
import type { VerdictEvent } from '../engine/ports.ts';
import type { RefuseVerdict, Verdict } from '../engine/verdict.ts';
import type { ApprovalChannels } from './approvals/approval-flow.ts';
import { isPromise } from '../engine/gate/store-calls.ts';
import { requestContext } from './gated-request.ts';
import { clientProgressToken, forwardedToolMeta, returnedResult, scrubbedError } from './meta.ts';
import type { PrincipalConfig } from './config.ts';
import type { ProxySession, ProxyShared } from './proxy-state.ts';
import { proxyRefusal, proxyRefusalResult, refusalResult, type ProxyRefusal, type ProxyRefuseCode } from './refusals.ts';
import type { ToolHold } from './pinning.ts';
import { forgetRawAnswer } from './raw-answer.ts';
import { screenedProgress, screenToolAnswer, screenUpstreamError } from './screening.ts';
import type { ExposedTool, ToolCatalogue } from './tool-catalogue.ts';
import type { ProxyTelemetry, ToolCallTrace, UpstreamTrace } from './telemetry.ts';
import { UpstreamFault, type CallSignal } from './upstream-call.ts';
import type { Upstream } from './upstream.ts';

/**
 * The longest reason a `kavach.mcp_refusal` record holds (the runtime's audit schema): a longer
 * one would be refused by the log, and the refusal go unrecorded.
 */
export const REFUSAL_REASON_MAX = 4096;

/** The most of an unknown tool's name its verdict record keeps as the action (the audit schema's limit is 512). */
const UNKNOWN_ACTION_MAX = 256;

/** A refusal the proxy gave itself (the gate was not asked), for the audit log. */
export interface ProxyRefusalRecord {
  type: 'kavach.mcp_refusal';
  time: number;
  evaluationId: string;
  principal: string;
  session: string;
  action: string;
  code: ProxyRefuseCode;
  reason: string;
}

/** Methods a server sends the client of its own accord, screened as its results are. */
export type ServerMessageMethod = 'sampling/createMessage' | 'elicitation/create' | 'notifications/message';

/**
 * What a screen found in a message a server sent of its own accord (no evaluation stands behind
 * it): where, never the value, and whether the message was withheld.
 */
export type ServerMessageScreenedRecord = {
  type: 'kavach.mcp_screened';
  time: number;
  server: string;
  method: ServerMessageMethod;
  // Type aliases, not interfaces: the audit log takes the record as plain JSON.
  findings: { screen: string; detector: string; path: string; count: number }[];
  withheld?: true;
};

/**
 * Where the proxy's own audit records go: an outcome per forwarded call, its own refusals, the
 * verdict on a call to a tool no server offers (the gate is not asked: there is no action to
 * judge), and what screens found in what servers sent of their own accord.
 */
export interface OutcomeSink {
  append(record: OutcomeEntry | ProxyRefusalRecord | VerdictEvent | ServerMessageScreenedRecord): Promise<unknown>;
}

export interface ToolCallParams {
  name: string;
  arguments?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

export interface ToolCallExtra {
  requestId: string | number;
  signal: CallSignal;
  sendNotification: (n: never) => Promise<void>;
}

/** The hot path of the proxy: one tools/call resolved, gated, forwarded with its permit, its outcome recorded. */
export class ToolCalls {
  /** tools/call in flight per token (HTTP sessions are keyed by their token's client entry). */
  private readonly inFlight = new Map<PrincipalConfig, number>();
  /** When each token last had its cap logged. */
  private readonly capLogged = new Map<PrincipalConfig, number>();

  constructor(
    private readonly shared: ProxyShared,
    private readonly catalogue: ToolCatalogue,
    private readonly outcomes: OutcomeSink | undefined,
    private readonly approvals: ApprovalChannels,
  ) {}

  call(session: ProxySession, params: ToolCallParams, extra: ToolCallExtra): Promise<CallToolResult> {
    // Over HTTP a token's calls in flight are capped: one agent cannot hold every upstream.
    const cap = session.transport === 'tcp' ? this.shared.config.http?.maxCallsPerToken : undefined;
    if (cap === undefined) return this.started(session, params, extra);
    const principal = session.principal;
    const inFlight = this.inFlight.get(principal) ?? 0;
    if (inFlight >= cap) return this.overCap(session, params, cap);
    this.inFlight.set(principal, inFlight + 1);
    const running = this.started(session, params, extra);
    running.then(
      () => this.callEnded(principal),
      () => this.callEnded(principal),
    );
    return running;
  }

  private started(session: ProxySession, params: ToolCallParams, extra: ToolCallExtra): Promise<CallToolResult> {
    // Without [telemetry] this is one property read.
    const telemetry = this.shared.telemetry;
    return telemetry === undefined ? this.run(session, params, extra, undefined) : this.traced(telemetry, session, params, extra);
  }

  private callEnded(principal: PrincipalConfig): void {
    const left = (this.inFlight.get(principal) ?? 1) - 1;
    if (left > 0) this.inFlight.set(principal, left);
    else this.inFlight.delete(principal);
  }

  /**
   * A call over its token's cap (`[http] max_calls_per_token`): refused at once, before the gate
   * (so it charges no limit), and recorded; the operator hears of it at most once a minute a token.
   */
  private overCap(session: ProxySession, params: ToolCallParams, cap: number): Promise<CallToolResult> {
    const principal = session.principal;
    const calls = cap === 1 ? '1 call' : `${cap} calls`;
    const now = Date.now();
    if ((this.capLogged.get(principal) ?? 0) <= now - 60_000) {
      this.capLogged.set(principal, now);
      this.shared.log(
        `http: '${principal.principalId}' has ${calls} in flight on one token ([http] max_calls_per_token); more are refused RATE_LIMITED until some end`,
      );
    }
    const action = this.catalogue.settled(params.name)?.action ?? actionNamed(params.name);
    const reason = `'${principal.principalId}' has ${calls} in flight, the most one token may have at once ([http] max_calls_per_token); retry when one has ended`;
    return this.refused(session, action, proxyRefusal('RATE_LIMITED', 'proxy', reason), false);
  }

  private async traced(
    telemetry: ProxyTelemetry,
    session: ProxySession,
    params: ToolCallParams,
    extra: ToolCallExtra,
  ): Promise<CallToolResult> {
    const trace = telemetry.toolCall({
      requestId: extra.requestId,
      sessionId: session.id,
      transport: session.transport ?? 'pipe',
      meta: params._meta,
    });
    let result: CallToolResult;
    try {
      result = await this.run(session, params, extra, trace);
    } catch (err) {
      trace.end(undefined, err);
      throw err;
    }
    trace.end(result, undefined);
    return result;
  }

  private async run(
    session: ProxySession,
    params: ToolCallParams,
    extra: ToolCallExtra,
    trace: ToolCallTrace | undefined,
  ): Promise<CallToolResult> {
    // Synchronously when it can be: this is the hot path, and an await costs a turn of the queue.
    const entry = this.catalogue.settled(params.name) ?? (await this.catalogue.resolve(params.name));
    if (!entry) return this.downServerOf(session, params.name) ?? this.unknownTool(session, params);
    trace?.resolved(entry.exposed, entry.action);
    const held = this.heldBack(session, entry);
    if (held) return held;
    const upstream = entry.upstream;
    if (upstream.state !== 'ready') return this.unavailable(session, entry.action, upstream);
    const args = params.arguments ?? {};
    const ctx = requestContext(session, { action: entry.action, audience: upstream.name, params: args });
    // Synchronous when the gate's every step is: the call goes upstream in the turn it arrived in.
    const decided = this.shared.gate.evaluateNow(ctx, trace && { traceContext: trace.context });
    let verdict: Verdict = isPromise(decided) ? await decided : decided;
    if (verdict.kind === 'refuse' && verdict.code === 'APPROVAL_REQUIRED' && verdict.approval !== undefined) {
      // A person decides (DESIGN §11): asked at the client, or elsewhere while the call is held.
      const settled = await this.approvals.settle(
        {
          session,
          ctx,
          toolName: params.name,
          signal: extra.signal,
          progressToken: clientProgressToken(params._meta),
          // Called detached there; the fast path's extra is a class whose method needs its `this`.
          sendNotification: (n) => extra.sendNotification(n),
        },
        { ...verdict, approval: verdict.approval },
      );
      verdict = settled.verdict;
      trace?.verdict(verdict);
      if (verdict.kind !== 'permit') return refusalResult(verdict, settled.note);
    } else trace?.verdict(verdict);
    if (verdict.kind !== 'permit') return refusalResult(verdict);
    // The definition may have changed (and the tool been held back) while the gate was deciding.
    const now = this.catalogue.get(params.name);
    const heldNow = now && this.heldBack(session, now);
    if (heldNow) return heldNow;

    const progressToken = clientProgressToken(params._meta);
    let progressSent: Promise<void> | undefined;
    let upstreamToken: string | undefined;
    if (progressToken !== undefined) {
      // The upstream gets its own token; its progress is re-tagged with the client's.
      upstreamToken = upstream.trackProgress((p) => {
        // After a cancellation the client has forgotten the token; late progress would confuse it.
        if (extra.signal.aborted) return;
        progressSent = extra
          .sendNotification({
            method: 'notifications/progress',
            params: { ...screenedProgress(this.shared.gate, entry.action, p), progressToken },
          } as never)
          .catch(() => undefined);
      });
    }
    const forwarded: Record<string, unknown> = { name: entry.tool.name, arguments: args };
    // Traced: the upstream continues the trace from the proxy's client span, not from the client's.
    const upstreamTrace: UpstreamTrace | undefined = trace?.upstream(upstream.name, entry.tool.name);
    const meta = forwardedToolMeta(params._meta, verdict, upstreamToken, upstreamTrace?.meta);
    if (meta !== undefined) forwarded._meta = meta;
    const started = performance.now();
    let result: CallToolResult;
    let outcome: OutcomeEntry['outcome'];
    let fault: string | undefined;
    let rethrow: unknown;
    try {
      result = await upstream.callTool(forwarded, { signal: extra.signal, timeoutMs: this.shared.config.tools.callTimeoutMs });
      upstreamTrace?.end(result, undefined);
      outcome = result.isError ? 'tool_error' : 'ok';
      // The client drops progress that arrives after the result: let the last one go first.
      if (progressSent) {
        await progressSent;
        await new Promise(setImmediate);
      }
    } catch (err) {
      upstreamTrace?.end(undefined, err);
      outcome = 'upstream_failure';
      // Bad arguments stay a protocol error, as if the client had called the server itself.
      if (err instanceof McpError && err.code === ErrorCode.InvalidParams) rethrow = scrubbedError(err);
      const message = extra.signal.aborted ? 'the call was cancelled' : (err as Error).message;
      // The proxy's own words (too large an answer, a server gone): the log keeps why; an
      // upstream's error text may hold argument values, so it does not.
      if (err instanceof UpstreamFault && !extra.signal.aborted) fault = message;
      result = { isError: true, content: [{ type: 'text', text: `Server '${upstream.name}' failed to answer: ${message}` }] };
    } finally {
      if (upstreamToken !== undefined) upstream.untrackProgress(upstreamToken);
    }
    // What flows back is screened before the client (or the audit log) holds it: a result, or
    // the text of an error relayed as one. A screened answer is never passed on as the
    // upstream's bytes (the screen read the parsed one).
    if (rethrow === undefined && this.shared.gate.policies.screens.planFor(entry.action) !== undefined) forgetRawAnswer(result);
    const screened =
      rethrow === undefined
        ? screenToolAnswer(this.shared.gate, entry.action, verdict.evaluationId, result)
        : screenUpstreamError(this.shared.gate, entry.action, verdict.evaluationId, rethrow);
    if (this.outcomes) {
      const record: OutcomeEntry = {
        type: 'outcome',
        time: Date.now(),
        evaluationId: verdict.evaluationId,
        action: entry.action,
        // The verdict record carries the session too: the report groups both under one session.
        session: session.id,
        outcome,
        durationMs: performance.now() - started,
      };
      if (fault !== undefined) record.error = fault.slice(0, 4096);
      if (screened?.findings) record.findings = screened.findings;
      if (screened?.withheld) record.withheld = true;
      if (trace?.traceId !== undefined) record.traceId = trace.traceId;
      // Awaited: the answer leaves only once its record is in the log, so a proxy killed right
      // after answering has not lost the record of what it answered (the soak run found this).
      await this.record(record, `the outcome of ${verdict.evaluationId}`);
    }
    if (!('result' in screened)) throw screened.error;
    return screened.withheld ? screened.result : returnedResult(screened.result, verdict);
  }

  /** Appends one record; a failure is logged (the call was answered or refused already on its merits). */
  private async record(record: Parameters<OutcomeSink['append']>[0], what: string): Promise<void> {
    try {
      await this.outcomes?.append(record);
    } catch (err) {
      this.shared.log(`audit: could not record ${what}: ${String(err)}`);
    }
  }

  /** The refusal of a tool the pin check holds back, if it does. */
  private heldBack(session: ProxySession, entry: ExposedTool): Promise<CallToolResult> | undefined {
    if (entry.held) {
      const { code, evaluator, reason } = heldRefusal(entry.action, entry.upstream.name, entry.held);
      return this.refused(session, entry.action, proxyRefusal(code, evaluator, reason), true);
    }
    // Not the tool's fault nor a policy's: the proxy cannot keep its pin, so the server is not served.
    if (entry.unpinned !== undefined)
      return this.refused(session, entry.action, proxyRefusal('UPSTREAM_UNAVAILABLE', 'pinning', entry.unpinned), false);
    return undefined;
  }

  /** The refusal of a call to a tool of a server that is down or starting. */
  private unavailable(session: ProxySession, action: string, upstream: Upstream): Promise<CallToolResult> {
    const reason = `server '${upstream.name}' is unavailable (${upstream.lastError ?? upstream.state}); it is being restarted, try again shortly`;
    return this.refused(session, action, proxyRefusal('UPSTREAM_UNAVAILABLE', 'upstream', reason), false);
  }

  /**
   * A tool no server lists, named `<server>__<tool>` for a configured server that has not come up
   * since the proxy started (so nobody knows what it offers beyond its pins): refused UPSTREAM_UNAVAILABLE with that server's reason, as
   * the client was told its tools answer, not as a tool that does not exist.
   */
  private downServerOf(session: ProxySession, name: string): Promise<CallToolResult> | undefined {
    // The longest server name that prefixes it, should one server's name begin another's.
    let upstream: Upstream | undefined;
    for (const u of this.shared.pool.upstreams)
      if (name.startsWith(`${u.name}__`) && name.length > u.name.length + 2 && u.name.length > (upstream?.name.length ?? -1)) upstream = u;
    // A server that ran listed its tools: a name it did not list is unknown, down or not.
    if (upstream === undefined || upstream.state === 'ready' || upstream.everReady) return undefined;
    return this.unavailable(session, `${upstream.name}.${name.slice(upstream.name.length + 2)}`, upstream);
  }

  /**
   * A call to a tool that no server lists: refused `NO_POLICY_MATCH` (no policy can permit what does
   * not exist) and recorded as a verdict like any other refused call, in the caller's session, so
   * a model probing for tools leaves a trace. The action reads `<server>.<tool>` when the name has
   * that shape. Upstreams still starting were waited for (`resolve`).
   */
  private async unknownTool(session: ProxySession, params: ToolCallParams): Promise<CallToolResult> {
    const name = params.name;
    const action = actionNamed(name);
    const reason = `no server offers a tool named ${JSON.stringify(name.slice(0, 80))}; tools/list names the tools there are`;
    const verdict: RefuseVerdict = { kind: 'refuse', evaluationId: randomUUID(), code: 'NO_POLICY_MATCH', evaluator: 'proxy', reason };
    if (this.outcomes) {
      const principal = session.principal;
      const record: VerdictEvent = {
        type: 'verdict',
        time: Date.now(),
        evaluationId: verdict.evaluationId,
        principal: principal.principalId,
        principalKind: principal.principalKind,
        action,
        session: session.id,
        verdict: 'refuse',
        code: verdict.code,
        evaluator: verdict.evaluator,
        reason,
        args: params.arguments ?? {},
      };
      await this.record(record, 'a call to an unknown tool');
    }
    return refusalResult(verdict);
  }

  /** A refusal the proxy gives itself: recorded, since the gate (which records its own) was not asked. */
  private async refused(session: ProxySession, action: string, verdict: ProxyRefusal, byPolicy: boolean): Promise<CallToolResult> {
    if (this.outcomes) {
      const record: ProxyRefusalRecord = {
        type: 'kavach.mcp_refusal',
        time: Date.now(),
        evaluationId: verdict.evaluationId,
        principal: session.principal.principalId,
        session: session.id,
        action,
        code: verdict.code,
        // A reason may quote a server's own error text (why it failed to start), of any length.
        reason: verdict.reason.slice(0, REFUSAL_REASON_MAX),
      };
      await this.record(record, 'a refusal');
    }
    return proxyRefusalResult(verdict, byPolicy);
  }
}

/**
 * The action a tool name reads as, `<server>.<tool>` when it has that shape, for a name no entry
 * resolves: the client chose it, of any length, and the audit schema takes an action of 512 at most.
 */
function actionNamed(name: string): string {
  const split = name.indexOf('__');
  return (split > 0 ? `${name.slice(0, split)}.${name.slice(split + 2)}` : name).slice(0, UNKNOWN_ACTION_MAX);
}

const APPROVE = 'an operator must review it with `kavach mcp approve-tools`';

/**
 * How a held tool's call is refused. A changed definition stays TOOL_CHANGED (the rug-pull code,
 * whatever the scan says of the new one); a tool never approved is TOOL_SUSPECT when the scan
 * found something, TOOL_CHANGED when it is only new. The model is told the kinds of finding,
 * never the text: that may be the injection.
 */
export function heldRefusal(action: string, server: string, held: ToolHold): { code: ProxyRefuseCode; evaluator: string; reason: string } {
  const kinds = [...new Set(held.findings.map((f) => f.kind))].join(', ');
  const scanned = kinds === '' ? '' : ` (the tool-definition scan found: ${kinds})`;
  if (held.reason === 'changed')
    return {
      code: 'TOOL_CHANGED',
      evaluator: 'pinning',
      reason: `the definition of '${action}' changed since it was approved${scanned}; an operator must run \`kavach mcp approve-tools\``,
    };
  if (kinds !== '')
    return {
      code: 'TOOL_SUSPECT',
      evaluator: 'tool-scan',
      reason: `the definition of '${action}' is held for review${scanned}; ${APPROVE}`,
    };
  return {
    code: 'TOOL_CHANGED',
    evaluator: 'pinning',
    reason: `'${action}' appeared after the tools of server '${server}' were approved; ${APPROVE}`,
  };
}
