import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { OutcomeFinding } from '../audit/record.ts';
import type { Gate } from '../engine/gate.ts';
import type { ProxyShared } from './proxy-state.ts';
import type { ServerMessageMethod, ServerMessageScreenedRecord } from './tool-calls.ts';
import { outputBlocked, recordedFindings } from '../engine/screen/index.ts';
import { formatRefusal } from '../engine/refusal.ts';
import { verdictMeta } from './meta.ts';
import { proxyRefusalResult } from './refusals.ts';

/** A tool's answer after result screening: what the client gets, and what the outcome record keeps. */
export interface ScreenedAnswer {
  result: CallToolResult;
  /** Where screens found something, never the value; undefined when nothing was found. */
  findings?: OutcomeFinding[];
  /** The answer was withheld (OUTPUT_BLOCKED) instead of forwarded. */
  withheld?: true;
}

/**
 * Screens an upstream's tools/call answer (DESIGN §13) before the client sees it: redacted in
 * redact mode, replaced by an OUTPUT_BLOCKED refusal in block mode, unchanged in report mode.
 * With no `[[screen]]` for the action the gate returns the very same object after one lookup.
 */
export function screenToolAnswer(gate: Gate, action: string, evaluationId: string, result: CallToolResult): ScreenedAnswer {
  const screened = gate.screen({ actionName: action }, result);
  if (screened.findings.length === 0 && screened.blocked === undefined) return { result: screened.output };
  const findings = recordedFindings(screened.findings);
  if (screened.blocked === undefined) return { result: screened.output, findings };
  // The gate permitted the call; the refusal is of its answer, under the same evaluation id.
  return { result: proxyRefusalResult(outputBlocked(evaluationId, screened.blocked), true), findings, withheld: true };
}

/** An upstream's JSON-RPC error after screening, and what the outcome record keeps. */
export interface ScreenedError {
  error: unknown;
  findings?: OutcomeFinding[];
  withheld?: true;
}

/**
 * Screens an upstream's JSON-RPC error (its `message` and `data` reach the client just as a
 * result does) with the screens for `action`: redacted in place of the original, or replaced by
 * an OUTPUT_BLOCKED error with the refusal text. Errors the proxy made itself pass unchanged.
 */
export function screenUpstreamError(gate: Gate, action: string, evaluationId: string, err: unknown): ScreenedError {
  if (!(err instanceof McpError)) return { error: err };
  const fields = { message: err.message, data: err.data };
  const screened = gate.screen({ actionName: action }, fields);
  if (screened.findings.length === 0 && screened.blocked === undefined) return { error: err };
  const findings = recordedFindings(screened.findings);
  if (screened.blocked !== undefined) {
    const verdict = outputBlocked(evaluationId, screened.blocked, "the server's error");
    const text = formatRefusal(verdict);
    const blocked = new McpError(err.code, text, verdictMeta(verdict));
    blocked.message = text; // without the SDK's "MCP error -N: " prefix: the client adds its own
    return { error: blocked, findings, withheld: true };
  }
  const redacted = new McpError(err.code, '', screened.output.data);
  redacted.message = screened.output.message;
  return { error: redacted, findings };
}

/**
 * With `gate_resources`: a resources/read or prompts/get answer (or its error) screened with the
 * screens for `action` (`<server>.resources/read`, `<server>.prompts/get`) before the client sees
 * it. A redacted answer is returned; a blocked one, or an error, is thrown. What was found goes to
 * the audit log as an `outcome` record of the evaluation that permitted the request.
 */
export async function screenedRequest<R>(
  gate: Gate,
  action: string,
  evaluationId: string,
  what: string,
  send: () => Promise<R>,
): Promise<R> {
  const started = performance.now();
  let result: R;
  try {
    result = await send();
  } catch (err) {
    const screened = screenUpstreamError(gate, action, evaluationId, err);
    if (screened.findings) record(gate, action, evaluationId, started, 'upstream_failure', screened.findings, screened.withheld);
    throw screened.error;
  }
  const screened = gate.screen({ actionName: action }, result);
  if (screened.findings.length === 0 && screened.blocked === undefined) return screened.output;
  record(gate, action, evaluationId, started, 'ok', recordedFindings(screened.findings), screened.blocked ? true : undefined);
  if (screened.blocked === undefined) return screened.output;
  const verdict = outputBlocked(evaluationId, screened.blocked, what);
  const text = formatRefusal(verdict);
  const blocked = new McpError(ErrorCode.InvalidRequest, text, verdictMeta(verdict));
  blocked.message = text;
  throw blocked;
}

function record(
  gate: Gate,
  action: string,
  evaluationId: string,
  started: number,
  outcome: 'ok' | 'upstream_failure',
  findings: OutcomeFinding[],
  withheld: true | undefined,
): void {
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  gate.recordOutcome({ evaluationId, action, outcome, durationMs, findings, ...(withheld ? { withheld } : {}) });
}

/**
 * A progress notification of a forwarded call, screened under the call's action: its `message`
 * is the server's text, read by the client (and often shown to its model) before the result is.
 * A message a block-mode screen withholds is dropped; the progress itself is still passed on.
 */
export function screenedProgress(gate: Gate, action: string, params: Record<string, unknown>): Record<string, unknown> {
  if (typeof params.message !== 'string') return params;
  const screened = gate.screen({ actionName: action }, params.message);
  if (screened.blocked !== undefined) {
    const { message: _withheld, ...rest } = params;
    return rest;
  }
  return screened.output === params.message ? params : { ...params, message: screened.output };
}

/**
 * What a server sends the client of its own accord — a sampling request (read by the client's
 * model), an elicitation (read by its user), a log line — screened under `<server>.<method>`
 * (`docs.sampling/createMessage`, `docs.elicitation/create`, `docs.notifications/message`), as its
 * tool results are: a server must not reach the model by another door with what its results may
 * not carry. `withheld`: a block-mode screen found something, so nothing of it may be passed on.
 * What was found (where, never the value) goes to stderr and, with `[audit]`, into the log as a
 * `kavach.mcp_screened` record (no evaluation stands behind these messages to hang it on).
 */
export function screenedServerMessage<T>(
  shared: ProxyShared,
  server: string,
  method: ServerMessageMethod,
  value: T,
): { value: T; withheld: boolean } {
  const screened = shared.gate.screen({ actionName: `${server}.${method}` }, value);
  if (screened.findings.length === 0 && screened.blocked === undefined) return { value: screened.output, withheld: false };
  const withheld = screened.blocked !== undefined;
  const found = [...new Set(screened.findings.map((f) => `${f.detector} at ${f.path}`))].slice(0, 8).join(', ');
  const done = withheld ? 'withheld' : screened.output === value ? 'passed on (report mode)' : 'redacted';
  shared.log(`upstream ${server}: ${method}: ${found}; ${done}`);
  const record: ServerMessageScreenedRecord = {
    type: 'kavach.mcp_screened',
    time: Date.now(),
    server,
    method,
    findings: recordedFindings(screened.findings),
  };
  if (withheld) record.withheld = true;
  shared.outcomes?.append(record).catch((err: unknown) => shared.log(`audit: could not record a screened ${method}: ${String(err)}`));
  return { value: screened.output, withheld };
}
