import { randomUUID } from 'node:crypto';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { formatRefusal } from '../engine/refusal.ts';
import type { RefuseVerdict, Verdict } from '../engine/verdict.ts';
import { verdictMeta } from './meta.ts';

/**
 * Refusals the proxy gives itself: before the gate is asked, or (OUTPUT_BLOCKED) of an answer a
 * block-mode screen withheld after the gate permitted the call.
 */
export type ProxyRefuseCode = 'TOOL_CHANGED' | 'TOOL_SUSPECT' | 'UPSTREAM_UNAVAILABLE' | 'OUTPUT_BLOCKED' | 'RATE_LIMITED';
export type ProxyRefusal = Omit<RefuseVerdict, 'code'> & { code: ProxyRefuseCode };

export function proxyRefusal(code: ProxyRefuseCode, evaluator: string, reason: string): ProxyRefusal {
  return { kind: 'refuse', evaluationId: randomUUID(), code, evaluator, reason };
}

/**
 * A refused tools/call as the model sees it. `byPolicy` false: the refusal is not a policy's (a
 * server that is down), so it reads as a plain sentence.
 */
export function proxyRefusalResult(verdict: ProxyRefusal, byPolicy: boolean): CallToolResult {
  const { code, evaluator, reason } = verdict;
  const text = byPolicy
    ? `Refused by policy [${code}] ${evaluator}: ${reason}.`
    : `[${code}] ${reason.charAt(0).toUpperCase()}${reason.slice(1)}.`;
  return { isError: true, content: [{ type: 'text', text }], _meta: verdictMeta(verdict) };
}

/** A tools/call the gate refused: the refusal text (and `note`, e.g. how to get it approved), the verdict in `_meta`. */
export function refusalResult(verdict: Exclude<Verdict, { kind: 'permit' }>, note?: string): CallToolResult {
  const text = note === undefined ? formatRefusal(verdict) : `${formatRefusal(verdict)} ${note}`;
  return { isError: true, content: [{ type: 'text', text }], _meta: verdictMeta(verdict) };
}

/** A gated resource or prompt request refused: a JSON-RPC error whose message is the refusal text. */
export function refusalError(verdict: Exclude<Verdict, { kind: 'permit' }>): McpError {
  const text = formatRefusal(verdict);
  const err = new McpError(ErrorCode.InvalidRequest, text, verdictMeta(verdict));
  // McpError prefixes "MCP error -32600: "; the client adds its own, so send the text as is.
  err.message = text;
  return err;
}
