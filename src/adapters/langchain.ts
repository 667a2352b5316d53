import { ToolMessage } from '@langchain/core/messages';
import type { StructuredToolInterface } from '@langchain/core/tools';
import { interopSafeParseAsync, isInteropZodSchema } from '@langchain/core/utils/types';
import { Command, interrupt, isCommand, isGraphInterrupt } from '@langchain/langgraph';
import { createMiddleware } from 'langchain';
import type { Principal } from '../engine/context.ts';
import { formatRefusal } from '../engine/refusal.ts';
import type { OutputBlockedVerdict, Verdict } from '../engine/verdict.ts';
import { warningSink } from '../engine/warnings.ts';
import { awaitedApproval, hasApprovals, readApprovalAnswer, type ApprovalGateLike, type KavachApprovalAnswer } from './approvals.ts';
import {
  decideToolCall,
  resolve,
  type AdapterOptions,
  type FromRun,
  type GateDecision,
  type GateLike,
  type ToolCallAttempt,
} from './shared.ts';
import { screenToolError, screenToolOutput } from './screening.ts';

/**
 * kavach/langchain: gate LangChain JS 1.x tools.
 * - `guardTool` / `guardTools`: a guarded copy of a tool; the gate runs after schema validation
 *   and before the tool body.
 * - `kavachMiddleware`: `createAgent` middleware (`wrapToolCall`) that gates every tool call,
 *   MCP-loaded and dynamically registered tools included. When the gate asks a person about a
 *   call (an approve policy, DESIGN §11) it raises LangGraph's `interrupt()` with the request; the
 *   value the app resumes with (`Command({ resume: { decision, approver, note } })`) is recorded
 *   with `gate.approvals.decide`, and the call is evaluated again: it runs only on a Permit.
 * A refusal is a ToolMessage with `status: "error"`, the refusal text as content and the verdict
 * as its artifact, so the model can explain or change course.
 * Both screen what a permitted tool returns with the gate's `[[screen]]` blocks (DESIGN §13): the
 * ToolMessage's content and artifact are redacted, or the whole message is replaced by an
 * OUTPUT_BLOCKED refusal (same shape as any refusal) when a block-mode screen matches.
 */

export type { AdapterOptions, GateDecision, GateLike } from './shared.ts';
export type { ScreenReport } from './screening.ts';
export type { ApprovalGateLike, KavachApprovalAnswer } from './approvals.ts';

/** What the principal/session/environment functions receive. */
export interface LangChainRunContext {
  /** The agent's runtime context (`agent.invoke(input, { context })`). */
  context: unknown;
  configurable: Record<string, unknown> | undefined;
  /** The agent state, when the call comes from an agent. */
  state: unknown;
}

export type LangChainAdapterOptions = AdapterOptions<LangChainRunContext>;

/** The artifact a refusal ToolMessage carries: the gate's verdict, as is (OUTPUT_BLOCKED: the withheld result's refusal). */
export type KavachArtifact = Exclude<Verdict, { kind: 'permit' }> | OutputBlockedVerdict;

interface ToolCallLike {
  id?: string | undefined;
  name: string;
  args: unknown;
}

type CallFn = (arg: unknown, runManager?: unknown, config?: Record<string, unknown>) => unknown;

function refusalMessage(refusal: { verdict: KavachArtifact; refusal: string }, callId: string, name: string): ToolMessage {
  const artifact: KavachArtifact = refusal.verdict;
  return new ToolMessage({ content: refusal.refusal, tool_call_id: callId, name, status: 'error', artifact });
}

function withheldRefusal(verdict: OutputBlockedVerdict): { verdict: KavachArtifact; refusal: string } {
  return { verdict, refusal: formatRefusal(verdict) };
}

/**
 * A ToolMessage after screening its content and artifact: the same message when nothing was
 * redacted, a copy with the redacted fields, or the OUTPUT_BLOCKED refusal in its place. A new
 * message, not an edited one: a message keeps its constructor fields (`lc_kwargs`) for
 * serialisation, and those would still hold the secret.
 */
function screenedMessage(
  gate: GateLike,
  opts: LangChainAdapterOptions,
  decision: GateDecision & { allowed: true },
  message: ToolMessage,
  started: number,
): ToolMessage {
  const fields = { content: message.content, artifact: message.artifact };
  const outcome = message.status === 'error' ? 'tool_error' : 'ok';
  const screened = screenToolOutput(gate, opts, decision, fields, started, outcome);
  if (screened.withheld) return refusalMessage(withheldRefusal(screened.withheld), message.tool_call_id, message.name ?? decision.toolName);
  if (screened.output === fields) return message;
  return new ToolMessage({
    content: screened.output.content,
    artifact: screened.output.artifact,
    tool_call_id: message.tool_call_id,
    ...(message.name !== undefined ? { name: message.name } : {}),
    ...(message.id !== undefined ? { id: message.id } : {}),
    ...(message.status !== undefined ? { status: message.status } : {}),
    ...(message.metadata !== undefined ? { metadata: message.metadata } : {}),
    additional_kwargs: message.additional_kwargs,
    response_metadata: message.response_metadata,
  });
}

/**
 * What a wrapped tool call handed back, screened: a ToolMessage, or a Command whose state update
 * carries ToolMessages (each screened). Anything else in a Command's update is the graph's state,
 * not a tool result for the model, and passes as it is.
 */
function screenedResult(
  gate: GateLike,
  opts: LangChainAdapterOptions,
  decision: GateDecision & { allowed: true },
  result: unknown,
  started: number,
): unknown {
  if (ToolMessage.isInstance(result)) return screenedMessage(gate, opts, decision, result, started);
  if (!isCommand(result)) return screenToolOutput(gate, opts, decision, result, started).output;
  const update = result.update as { messages?: unknown } | undefined;
  if (!update || typeof update !== 'object' || !Array.isArray(update.messages)) return result;
  let changed = false;
  const messages = update.messages.map((m: unknown) => {
    if (!ToolMessage.isInstance(m)) return m;
    const next = screenedMessage(gate, opts, decision, m, started);
    if (next !== m) changed = true;
    return next;
  });
  if (!changed) return result;
  return new Command({ ...result, update: { ...update, messages } } as ConstructorParameters<typeof Command>[0]);
}

function runContextOf(config: Record<string, unknown> | undefined): LangChainRunContext {
  return {
    context: config?.context,
    configurable: config?.configurable as Record<string, unknown> | undefined,
    state: config?.state,
  };
}

/**
 * A guarded copy of a LangChain tool. Name, description, schema, type and prototype stay the
 * same; only `_call` (the step after schema validation) is wrapped. The original is untouched.
 */
export function guardTool<T extends StructuredToolInterface>(tool: T, gate: GateLike, opts: LangChainAdapterOptions): T {
  const inner = (tool as unknown as { _call?: CallFn })._call;
  if (typeof inner !== 'function') throw new TypeError(`kavach: '${tool.name}' is not a LangChain tool with a _call method`);
  const copy = Object.create(Object.getPrototypeOf(tool) as object, Object.getOwnPropertyDescriptors(tool)) as T;
  const guardedCall: CallFn = async function (this: T, arg, runManager, config) {
    const toolCall = config?.toolCall as ToolCallLike | undefined;
    const callId = toolCall?.id ?? (typeof config?.toolCallId === 'string' ? config.toolCallId : undefined);
    const decision = await decideToolCall(gate, opts, { toolName: tool.name, args: arg, callId, run: runContextOf(config) });
    if (!decision.allowed) return refused(decision, callId);
    const started = performance.now();
    let output: unknown;
    try {
      output = await inner.call(this, arg, runManager, config);
    } catch (err) {
      // An interrupt is how a run pauses, not text for the model; any other error's text may reach it.
      if (isGraphInterrupt(err)) throw err;
      throw screenToolError(gate, opts, decision, err, started);
    }
    if (ToolMessage.isInstance(output)) return screenedMessage(gate, opts, decision, output, started);
    // A [content, artifact] pair is screened as one value: both reach the message.
    const screened = screenToolOutput(gate, opts, decision, output, started);
    return screened.withheld ? refused(withheldRefusal(screened.withheld), callId) : screened.output;
  };
  const refused = (refusal: { verdict: KavachArtifact; refusal: string }, callId: string | undefined) => {
    if (callId !== undefined) {
      const message = refusalMessage(refusal, callId, tool.name);
      // call() insists on a [content, artifact] pair for these tools; a ToolMessage as content passes through whole.
      return (tool as { responseFormat?: string }).responseFormat === 'content_and_artifact' ? [message, undefined] : message;
    }
    // Invoked directly with plain arguments: there is no message to build, so return the text.
    return (tool as { responseFormat?: string }).responseFormat === 'content_and_artifact'
      ? [refusal.refusal, refusal.verdict]
      : refusal.refusal;
  };
  Object.defineProperty(copy, '_call', { value: guardedCall, writable: true, configurable: true, enumerable: false });
  return copy;
}

/** `guardTool` over a list, keeping the array (or tuple) type. */
export function guardTools<T extends readonly StructuredToolInterface[]>(tools: T, gate: GateLike, opts: LangChainAdapterOptions): T {
  return tools.map((tool) => guardTool(tool, gate, opts)) as unknown as T;
}

/**
 * The arguments as the tool's body will receive them: its zod schema coerces and fills defaults
 * first (`"5000"` becomes 5000). Arguments the schema rejects are returned as they are: the tool
 * refuses them itself.
 */
async function argsForTool(tool: unknown, args: unknown): Promise<unknown> {
  const schema = (tool as { schema?: unknown } | undefined)?.schema;
  if (!isInteropZodSchema(schema)) return args;
  try {
    const parsed = await interopSafeParseAsync(schema, args);
    return parsed.success ? parsed.data : args;
  } catch {
    return args; // a refinement that throws: the tool's own validation throws too
  }
}

export interface KavachMiddlewareOptions extends LangChainAdapterOptions {
  name?: string;
  /**
   * Who decides when the resume value names nobody: the app's signed-in person, from the run
   * (`agent.invoke(new Command({ resume }), { context })`). A resume value's `approver` wins.
   */
  approver?: FromRun<Principal, LangChainRunContext>;
}

/** The value `kavachMiddleware` raises with `interrupt()` when a call waits for a person. */
export interface KavachApprovalInterrupt {
  type: 'kavach.approval';
  /** The gate's request id (`gate.approvals.get(id)`). */
  id: string;
  expiresAt: number;
  tool: string;
  toolCallId: string | undefined;
  action: string;
  /** The arguments for the approver's eyes (minus the gate's `approvalRedact` pointers). */
  args: unknown;
  /** Why a person is asked: the approve policy's description, else its name. */
  reason: string;
  policy: string;
  /** The refusal the model reads if nobody decides. */
  refusal: string;
}

/**
 * Agent middleware for `createAgent({ middleware: [kavachMiddleware(gate, opts)] })`. It gates
 * every tool, including ones without a declared instance, on the arguments the tool will receive
 * (after its schema when the tool is known; the model's raw arguments otherwise). With a
 * checkpointer, a call that needs a person interrupts the run (see KavachApprovalInterrupt and
 * KavachApprovalAnswer); without one, or with a gate that has no `approvals`, the model reads the
 * APPROVAL_REQUIRED refusal instead.
 */
export function kavachMiddleware(gate: GateLike, opts: KavachMiddlewareOptions) {
  return createMiddleware({
    name: opts.name ?? 'KavachMiddleware',
    wrapToolCall: async (request, handler) => {
      const { toolCall } = request;
      const run: LangChainRunContext = {
        context: request.runtime.context,
        configurable: request.runtime.configurable,
        state: request.state,
      };
      const args = await argsForTool(request.tool, toolCall.args);
      const attempt: ToolCallAttempt<LangChainRunContext> = { toolName: toolCall.name, args, callId: toolCall.id, run };
      let decision = await decideToolCall(gate, opts, attempt);
      if (hasApprovals(gate) && awaitedApproval(decision) && (await askPerson(gate, opts, decision, attempt))) {
        // Decided: ask the gate again. Only a permit (the grant's use, bound to these arguments) runs the tool.
        decision = await decideToolCall(gate, opts, attempt);
      }
      if (!decision.allowed) return refusalMessage(decision, toolCall.id ?? '', toolCall.name);
      const started = performance.now();
      let result: Awaited<ReturnType<typeof handler>>;
      try {
        result = await handler(request);
      } catch (err) {
        // The ToolNode turns a tool's error into a message for the model: its text is screened first.
        if (isGraphInterrupt(err)) throw err;
        throw screenToolError(gate, opts, decision, err, started);
      }
      return screenedResult(gate, opts, decision, result, started) as typeof result;
    },
  });
}

/**
 * Interrupts the run with the request and records the answer it is resumed with. True when an
 * answer was recorded (or tried): the call is then evaluated again. A GraphInterrupt propagates
 * (that is how the run pauses); anything else leaves the call refused APPROVAL_REQUIRED.
 */
async function askPerson(
  gate: ApprovalGateLike,
  opts: KavachMiddlewareOptions,
  decision: GateDecision,
  attempt: ToolCallAttempt<LangChainRunContext>,
): Promise<boolean> {
  const warn = warningSink(opts.onWarning);
  const waiting = awaitedApproval(decision);
  if (!waiting || decision.allowed || decision.verdict.kind !== 'refuse') return false;
  let resumed: unknown;
  try {
    const request = await gate.approvals.get(waiting.id);
    if (!request) return false;
    const payload: KavachApprovalInterrupt = {
      type: 'kavach.approval',
      id: request.id,
      expiresAt: waiting.expiresAt,
      tool: attempt.toolName,
      toolCallId: attempt.callId,
      action: request.action,
      args: request.args,
      reason: request.reason,
      policy: request.policy,
      refusal: decision.refusal,
    };
    resumed = interrupt<KavachApprovalInterrupt, unknown>(payload);
  } catch (err) {
    if (isGraphInterrupt(err)) throw err;
    warn(
      `tool call '${attempt.toolName}' waits for approval ${waiting.id} but cannot interrupt the run: ${(err as Error)?.message ?? String(err)}`,
    );
    return false;
  }
  const answer: KavachApprovalAnswer | undefined = readApprovalAnswer(resumed);
  if (!answer) {
    warn(`approval ${waiting.id}: the resume value is not { decision: 'grant' | 'deny', approver?, note? }; nothing was decided`);
    return false;
  }
  const approver = answer.approver ?? (await resolve(opts.approver, attempt.run));
  if (!approver) {
    warn(`approval ${waiting.id}: no approver (neither in the resume value nor from the approver option); nothing was decided`);
    return false;
  }
  try {
    await gate.approvals.decide(waiting.id, {
      approver,
      decision: answer.decision,
      ...(answer.note !== undefined ? { note: answer.note } : {}),
    });
  } catch (err) {
    warn(`approval ${waiting.id}: the decision was not taken: ${(err as Error)?.message ?? String(err)}`);
  }
  return true;
}
