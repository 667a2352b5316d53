import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { OutcomeFinding } from '../audit/record.ts';
import type { Gate } from '../engine/gate.ts';
import { outputBlocked, recordedFindings } from '../engine/screen/index.ts';
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
