import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { MAX_OUTCOME_FINDINGS } from '../audit/entry.ts';
import type { OutcomeFinding } from '../audit/record.ts';
import type { Gate } from '../engine/gate.ts';
import { describeWithheld } from '../engine/screen/index.ts';
import { proxyRefusalResult, type ProxyRefusal } from './refusals.ts';

/** The longest finding path the outcome record keeps (a pointer into a huge document is cut). */
const MAX_RECORDED_PATH = 1024;

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
  const verdict: ProxyRefusal = {
    kind: 'refuse',
    evaluationId,
    code: 'OUTPUT_BLOCKED',
    evaluator: 'screen',
    reason: describeWithheld(screened.blocked),
  };
  return { result: proxyRefusalResult(verdict, true), findings, withheld: true };
}

/** The findings as the audit record takes them: bounded in number and path length. */
function recordedFindings(found: readonly OutcomeFinding[]): OutcomeFinding[] {
  const out: OutcomeFinding[] = [];
  for (const f of found.slice(0, MAX_OUTCOME_FINDINGS)) {
    const path = f.path.length > MAX_RECORDED_PATH ? `${f.path.slice(0, MAX_RECORDED_PATH)}…` : f.path;
    out.push({ screen: f.screen, detector: f.detector, path, count: f.count });
  }
  return out;
}
