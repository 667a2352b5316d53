import type { ElicitRequestFormParams, ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import type { ApprovalRequest } from '../../engine/approvals/types.ts';
import { terminalJson, visible } from '../../engine/terminal-text.ts';

/** Each string argument is cut to this many characters in the question; the whole to ARGS_MAX. */
const STRING_MAX = 200;
const ARGS_MAX = 2_000;
export const NOTE_MAX = 500;

/** What the person at the client answered, read from an `elicitation/create` result. */
export interface ElicitedDecision {
  decision: 'grant' | 'deny';
  note?: string;
}

/**
 * The question put to the person at the client: which tool, with which arguments (shortened; the
 * request's `args` already lack what `[audit] redact` removes), why, and a form with the decision
 * and an optional note. Every string from the call is shown with invisible and control characters
 * escaped, so an argument cannot disguise itself in the client's dialog.
 */
export function approvalQuestion(request: ApprovalRequest, toolName: string): ElicitRequestFormParams {
  const args = request.args === undefined ? { text: '(none kept)', hidden: 0 } : shortArgs(request.args);
  const lines = [
    'Kavach: an agent asks to run a call that needs your approval.',
    // Said first: what runs is the whole call, and a payload can hide past the cut (after spaces, say).
    ...(args.hidden > 0
      ? [
          `Not all of the arguments fit here (${args.hidden} characters are not shown): read them in full with \`kavach approvals show ${request.id}\` before you approve.`,
        ]
      : []),
    `Tool: ${visible(toolName)} (${visible(request.action)})`,
    // One sentence: the reason (a policy's description) may end in a parenthesis of its own.
    request.reason === request.policy
      ? `Why: policy '${visible(request.policy)}' asks a person to approve it.`
      : `Why: policy '${visible(request.policy)}' asks a person to approve it: ${visible(request.reason)}`,
    `Caller: ${visible(request.principal.id)} (${request.principal.kind})`,
    `Arguments: ${args.text}`,
    `Request ${request.id}, open until ${new Date(request.expiresAt).toISOString()}.`,
    'Approve lets this exact call run; any other arguments would need another approval.',
  ];
  return {
    mode: 'form',
    message: lines.join('\n'),
    requestedSchema: {
      type: 'object',
      properties: {
        decision: { type: 'string', title: 'Decision', description: 'approve: run this call; deny: refuse it', enum: ['approve', 'deny'] },
        note: {
          type: 'string',
          title: 'Note (optional)',
          description: 'recorded in the audit log with your decision',
          maxLength: NOTE_MAX,
        },
      },
      required: ['decision'],
    },
  };
}

/** accept + approve grants; accept + deny, decline and cancel deny (a dismissed question is not a yes). */
export function readAnswer(result: ElicitResult): ElicitedDecision {
  const content = result.content ?? {};
  const note = typeof content.note === 'string' && content.note.trim() !== '' ? content.note.slice(0, NOTE_MAX) : undefined;
  const decision = result.action === 'accept' && content.decision === 'approve' ? 'grant' : 'deny';
  const out: ElicitedDecision = { decision };
  if (note !== undefined) out.note = note;
  else if (result.action !== 'accept') out.note = result.action === 'decline' ? 'declined at the client' : 'dismissed at the client';
  return out;
}

/** JSON of the arguments with long strings cut and the whole bounded. */
export function shortJson(value: unknown): string {
  return shortArgs(value).text;
}

/** The arguments as shown, and how many characters of them are not (cut strings, the cut whole, deep values). */
function shortArgs(value: unknown): { text: string; hidden: number } {
  const cut = { hidden: 0 };
  const json = terminalJson(shorten(value, 0, cut));
  if (json.length <= ARGS_MAX) return { text: json, hidden: cut.hidden };
  return { text: `${json.slice(0, ARGS_MAX)}… (${json.length - ARGS_MAX} more characters)`, hidden: cut.hidden + json.length - ARGS_MAX };
}

function shorten(value: unknown, depth: number, cut: { hidden: number }): unknown {
  if (typeof value === 'string') {
    if (value.length <= STRING_MAX) return value;
    cut.hidden += value.length - STRING_MAX;
    return `${value.slice(0, STRING_MAX)}… (${value.length - STRING_MAX} more characters)`;
  }
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 8) {
    cut.hidden += JSON.stringify(value)?.length ?? 1;
    return '…';
  }
  if (Array.isArray(value)) return value.map((v) => shorten(v, depth + 1, cut));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = shorten(v, depth + 1, cut);
  return out;
}
