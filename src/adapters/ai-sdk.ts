import type { Tool, ToolExecutionOptions } from 'ai';
import { warningSink } from '../engine/warnings.ts';
import { decideToolCall, ToolCallRefused, type AdapterOptions, type GateLike } from './shared.ts';

/**
 * kavach/ai-sdk: gate Vercel AI SDK tools (written against ai@6; the shapes of 5 and 7 are
 * handled structurally).
 * - `guardTool` / `guardTools` wrap `execute`. A refusal is thrown as `ToolCallRefused`, which
 *   the SDK turns into a tool error whose text (the refusal) the model reads on its next step.
 * - `kavachToolApproval` plugs the gate into AI SDK 7's `toolApproval` hook.
 */

export type { AdapterOptions, GateDecision, GateLike } from './shared.ts';
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
  const check = async (input: unknown, options: ToolExecutionOptions): Promise<void> => {
    const run = runContextOf(options);
    const decision = await decideToolCall(gate, opts, { toolName, args: input, callId: run.toolCallId || undefined, run });
    if (!decision.allowed) throw new ToolCallRefused(decision.verdict);
  };
  // Keep streaming tools streaming: an async generator stays one, so preliminary results still flow.
  const guarded: AnyExecute = isAsyncGeneratorFunction(execute)
    ? async function* (this: unknown, input, options) {
      await check(input, options);
      yield* execute.call(this, input, options) as AsyncIterable<unknown>;
    }
    : async function (this: unknown, input, options) {
      await check(input, options);
      return execute.call(this, input, options);
    };
  return { ...tool, execute: guarded } as T;
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
  | { type: 'user-approval' };

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
 * with the refusal text as the reason (the model sees it); Permit → `next(event)` or
 * `'not-applicable'`. Pair it with `guardTools` if you like: the same tool-call id is charged once.
 */
export function kavachToolApproval(gate: GateLike, opts: KavachToolApprovalOptions) {
  return async (event: ToolApprovalEventLike): Promise<ToolApprovalStatusLike> => {
    const { toolCall } = event;
    const run: AiSdkRunContext = { context: event.runtimeContext, toolCallId: toolCall.toolCallId, messages: event.messages ?? [] };
    const decision = await decideToolCall(gate, opts, { toolName: toolCall.toolName, args: toolCall.input, callId: toolCall.toolCallId || undefined, run });
    if (!decision.allowed) return { type: 'denied', reason: decision.refusal };
    return opts.next ? opts.next(event) : 'not-applicable';
  };
}
