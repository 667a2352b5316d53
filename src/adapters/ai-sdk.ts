import type { Tool, ToolExecutionOptions } from 'ai';
import { ApprovalError, type ApprovalRequest } from '../engine/approvals/types.ts';
import type { Principal } from '../engine/context.ts';
import { warningSink } from '../engine/warnings.ts';
import { awaitedApproval, callMemoryOf, deniedRefusal, restsOnPerson, type ApprovalGateLike } from './approvals.ts';
import { screenToolError, screenToolOutput } from './screening.ts';
import { decideToolCall, ToolCallRefused, type AdapterOptions, type GateDecision, type GateLike } from './shared.ts';

/**
 * kavach/ai-sdk: gate Vercel AI SDK tools (written against ai@6; the shapes of 5 and 7 are
 * handled structurally).
 * - `guardTool` / `guardTools` wrap `execute`. A refusal is thrown as `ToolCallRefused`, which
 *   the SDK turns into a tool error whose text (the refusal) the model reads on its next step.
 *   They also set `needsApproval`: true when the gate asks a person about the call (an approve
 *   policy, DESIGN §11), so the SDK's own tool-approval flow asks the app's user.
 * - `kavachApprovalResponse` records the user's answer with the gate (`gate.approvals.decide`),
 *   so it is audited and bound to the exact arguments; only then does the approved call run.
 * - `kavachToolApproval` plugs the gate into AI SDK 7's `toolApproval` hook.
 * What a permitted `execute` returns (each value a streaming tool yields) is screened with the
 * gate's `[[screen]]` blocks (DESIGN §13) before the SDK hands it to `toModelOutput` and the
 * model: redacted, or withheld by throwing `ToolCallRefused` with the OUTPUT_BLOCKED refusal.
 * The approval check and `execute` of one call share one evaluation (see call-memory.ts).
 */

export type { AdapterOptions, GateDecision, GateLike } from './shared.ts';
export type { ScreenReport } from './screening.ts';
export type { ApprovalGateLike } from './approvals.ts';
export { ToolCallRefused } from './shared.ts';

/** What the principal/session/environment functions receive. */
export interface AiSdkRunContext {
  /** `experimental_context` (ai 5/6) or the runtime `context` (ai 7) given to generateText/streamText. */
  context: unknown;
  toolCallId: string;
  messages: readonly unknown[];
}

export type AiSdkAdapterOptions = AdapterOptions<AiSdkRunContext>;

type AnyExecute = (input: unknown, options: ToolExecutionOptions) => unknown;

function isAsyncGeneratorFunction(fn: unknown): boolean {
  return typeof fn === 'function' && fn.constructor?.name === 'AsyncGeneratorFunction';
}

function runContextOf(options: ToolExecutionOptions | undefined): AiSdkRunContext {
  const o = (options ?? {}) as Partial<ToolExecutionOptions> & { context?: unknown };
  return {
    context: o.experimental_context !== undefined ? o.experimental_context : o.context,
    toolCallId: typeof o.toolCallId === 'string' ? o.toolCallId : '',
    messages: Array.isArray(o.messages) ? o.messages : [],
  };
}

/**
 * A guarded copy of an AI SDK tool (AI SDK tools carry no name, so pass the ToolSet key as
 * `name`): same description, schema, options and type; `execute` asks the gate first. That
 * includes provider-defined tools with an `execute` (local shell, bash, computer use): the SDK
 * runs those here. A tool without `execute` runs at the provider (web search) or in the client;
 * nothing local can stop it, so it is returned unchanged with a warning (`onWarning`, default stderr).
 */
export function guardTool<T extends Tool>(tool: T, gate: GateLike, opts: AiSdkAdapterOptions & { name: string }): T {
  const toolName = opts.name;
  const execute = (tool as { execute?: AnyExecute }).execute;
  if (typeof execute !== 'function') {
    warningSink(opts.onWarning)(`tool '${toolName}' has no execute (it runs at the provider or in the client); it passes through ungated`);
    return tool;
  }
  const memory = callMemoryOf(gate);
  const check = async (input: unknown, options: ToolExecutionOptions): Promise<GateDecision & { allowed: true }> => {
    const run = runContextOf(options);
    const decision = await decideToolCall(
      gate,
      opts,
      { toolName, args: input, callId: run.toolCallId || undefined, run },
      { memory, role: 'run' },
    );
    if (!decision.allowed) throw new ToolCallRefused(decision.verdict);
    return decision;
  };
  const screened = (decision: GateDecision & { allowed: true }, output: unknown, started: number): unknown => {
    const result = screenToolOutput(gate, opts, decision, output, started);
    if (result.withheld) throw new ToolCallRefused(result.withheld);
    return result.output;
  };
  const own = (tool as { needsApproval?: unknown }).needsApproval;
  const needsApproval: NeedsApproval = async function (this: unknown, input, options) {
    const run = runContextOf(options as ToolExecutionOptions);
    const decision = await decideToolCall(
      gate,
      opts,
      { toolName, args: input, callId: run.toolCallId || undefined, run },
      { memory, role: 'ask' },
    );
    // A call the gate refuses outright is refused by execute; nobody need be asked about it.
    if (!decision.allowed && !awaitedApproval(decision)) return false;
    if (asksPerson(decision, run)) return true;
    return typeof own === 'function' ? (own as NeedsApproval).call(this, input, options) : own === true;
  };
  // Keep streaming tools streaming: an async generator stays one, so preliminary results still flow.
  const guarded: AnyExecute = isAsyncGeneratorFunction(execute)
    ? async function* (this: unknown, input, options) {
        const decision = await check(input, options);
        const started = performance.now();
        try {
          // Each preliminary result reaches the UI (and the last one the model): each is screened.
          for await (const chunk of execute.call(this, input, options) as AsyncIterable<unknown>) yield screened(decision, chunk, started);
        } catch (err) {
          throw screenToolError(gate, opts, decision, err, started);
        }
      }
    : async function (this: unknown, input, options) {
        const decision = await check(input, options);
        const started = performance.now();
        let output: unknown;
        try {
          output = await execute.call(this, input, options);
        } catch (err) {
          // The SDK shows the model the error's text: screened like a result.
          throw screenToolError(gate, opts, decision, err, started);
        }
        return screened(decision, output, started);
      };
  return { ...tool, execute: guarded, needsApproval } as T;
}

type NeedsApproval = (
  input: unknown,
  options: { toolCallId: string; messages: unknown[]; experimental_context?: unknown },
) => boolean | PromiseLike<boolean>;

/**
 * Whether the SDK should ask its user about this call: the gate waits for a person, or the call is
 * permitted by a grant the user gave in this conversation. The SDK asks needsApproval again before
 * it runs an approved call and treats "no" as a denial, so the answered call must still say yes;
 * a call granted elsewhere (the approvals page, `gate.approvals.decide`) runs without asking again.
 */
function asksPerson(decision: GateDecision, run: AiSdkRunContext): boolean {
  if (!restsOnPerson(decision)) return false;
  if (awaitedApproval(decision)) return true;
  return answeredInConversation(run.messages, run.toolCallId);
}

/** Whether the messages hold the user's answer to an approval request for this tool call. */
function answeredInConversation(messages: readonly unknown[], toolCallId: string): boolean {
  if (toolCallId === '') return false;
  const asked = new Set<string>();
  const answered = new Set<string>();
  for (const message of messages) {
    const content = (message as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const part of content as unknown[]) {
      const p = part as { type?: unknown; approvalId?: unknown; toolCallId?: unknown; toolCall?: { toolCallId?: unknown } } | null;
      if (typeof p?.approvalId !== 'string') continue;
      if (p.type === 'tool-approval-request' && (p.toolCallId ?? p.toolCall?.toolCallId) === toolCallId) asked.add(p.approvalId);
      if (p.type === 'tool-approval-response') answered.add(p.approvalId);
    }
  }
  for (const id of asked) if (answered.has(id)) return true;
  return false;
}

// ---- the user's answer ------------------------------------------------------------------------

export interface KavachApprovalResponseInput {
  /** The gate's request id (`verdict.approval.id` of the APPROVAL_REQUIRED decision, `onDecision`). */
  approvalId?: string;
  /** Or the AI SDK tool call the request was made for, when this process saw it asked. */
  toolCallId?: string;
  /** What the user answered in the app's approval UI. */
  approved: boolean;
  /** The signed-in person who answered: from the app's session, never from the model or the message history. */
  approver: Principal;
  note?: string;
}

export interface KavachApprovalResponse {
  /** The request after the decision (`granted`, `denied`, or still `pending` while a quorum is incomplete). */
  request: ApprovalRequest;
  /** For the SDK's `tool-approval-response`: true only when the request is granted. */
  approved: boolean;
  /** For the SDK's `tool-approval-response`: the refusal the model reads when the call will not run. */
  reason?: string;
}

/**
 * Records the user's answer to an approval request with the gate, before the app sends the SDK
 * its `tool-approval-response` (`{ type: 'tool-approval-response', approvalId: <the SDK's id>,
 * approved, reason }` from the result). The decision is the gate's record: audited, bound to the
 * exact arguments; a "yes" in the message history alone never runs the call. Throws ApprovalError
 * (NOT_FOUND, SELF_APPROVAL, NOT_AN_APPROVER, EXPIRED, NOT_PENDING) when the gate will not take it.
 */
export async function kavachApprovalResponse(gate: ApprovalGateLike, input: KavachApprovalResponseInput): Promise<KavachApprovalResponse> {
  const id = input.approvalId ?? (input.toolCallId !== undefined ? callMemoryOf(gate).requestFor(input.toolCallId) : undefined);
  if (id === undefined) {
    throw new ApprovalError(
      'NOT_FOUND',
      '',
      `no approval request known for tool call ${JSON.stringify(input.toolCallId ?? '')}; pass the request's approvalId`,
    );
  }
  const request = await gate.approvals.decide(id, {
    approver: input.approver,
    decision: input.approved ? 'grant' : 'deny',
    ...(input.note !== undefined ? { note: input.note } : {}),
  });
  if (request.status === 'granted') return { request, approved: true };
  if (request.status === 'denied') return { request, approved: false, reason: deniedRefusal(request) };
  const waiting = `Refused by policy [APPROVAL_REQUIRED] approval: '${request.policy}' needs more approvers for '${request.action}' (request ${request.id}).`;
  return { request, approved: false, reason: waiting };
}

/**
 * Guards every tool of a ToolSet; the key is the tool name the gate sees (before `actionName`).
 * The ToolSet's type, and with it every tool's input and output types, is kept.
 */
export function guardTools<TOOLS extends Record<string, Tool>>(tools: TOOLS, gate: GateLike, opts: AiSdkAdapterOptions): TOOLS {
  const out: Record<string, Tool> = {};
  for (const [name, tool] of Object.entries(tools)) out[name] = guardTool(tool, gate, { ...opts, name });
  return out as TOOLS;
}

// ---- AI SDK 7 `toolApproval` ------------------------------------------------------------------

/** The status a `toolApproval` function returns in ai@7 (typed structurally; ai@7 needs Node 22). */
export type ToolApprovalStatusLike =
  | undefined
  | 'not-applicable'
  | 'approved'
  | 'denied'
  | 'user-approval'
  | { type: 'not-applicable' }
  | { type: 'approved'; reason?: string }
  | { type: 'denied'; reason?: string }
  | { type: 'user-approval'; context?: KavachApprovalContext };

/** What Kavach puts in ai@7's `user-approval` status: the gate's request, for the approval UI. */
export interface KavachApprovalContext {
  kavach: { approvalId: string; expiresAt: number; reason: string };
}

/** What ai@7 passes to a generic `toolApproval` function (the fields Kavach reads). */
export interface ToolApprovalEventLike {
  toolCall: { toolName: string; toolCallId: string; input: unknown };
  runtimeContext?: unknown;
  messages?: readonly unknown[];
}

export interface KavachToolApprovalOptions extends AiSdkAdapterOptions {
  /** Asked after a permit (e.g. to still require a human for some tools). Default: not-applicable. */
  next?: (event: ToolApprovalEventLike) => ToolApprovalStatusLike | PromiseLike<ToolApprovalStatusLike>;
}

/**
 * A generic `toolApproval` function for ai@7: Refuse or Invalidate → `{ type: 'denied', reason }`
 * with the refusal text as the reason (the model sees it); APPROVAL_REQUIRED → `{ type:
 * 'user-approval' }` (the app's user is asked; record the answer with `kavachApprovalResponse`);
 * Permit → `next(event)` or `'not-applicable'`. Pair it with `guardTools` if you like: the
 * guarded execute of the same call uses this evaluation instead of asking the gate again.
 */
export function kavachToolApproval(gate: GateLike, opts: KavachToolApprovalOptions) {
  const memory = callMemoryOf(gate);
  return async (event: ToolApprovalEventLike): Promise<ToolApprovalStatusLike> => {
    const { toolCall } = event;
    const run: AiSdkRunContext = { context: event.runtimeContext, toolCallId: toolCall.toolCallId, messages: event.messages ?? [] };
    const attempt = { toolName: toolCall.toolName, args: toolCall.input, callId: toolCall.toolCallId || undefined, run };
    const decision = await decideToolCall(gate, opts, attempt, { memory, role: 'ask' });
    const waiting = awaitedApproval(decision);
    if (waiting) {
      return {
        type: 'user-approval',
        context: { kavach: { approvalId: waiting.id, expiresAt: waiting.expiresAt, reason: decision.allowed ? '' : decision.refusal } },
      };
    }
    if (!decision.allowed) return { type: 'denied', reason: decision.refusal };
    if (asksPerson(decision, run)) return { type: 'user-approval' };
    return opts.next ? opts.next(event) : 'not-applicable';
  };
}
