import { randomUUID } from 'node:crypto';
import type {
  RunToolApprovalItem,
  ToolGuardrailFunctionOutput,
  ToolInputGuardrailDefinition,
  ToolOutputGuardrailDefinition,
} from '@openai/agents';
import { ApprovalError, type ApprovalRequest } from '../engine/approvals/types.ts';
import type { Principal } from '../engine/context.ts';
import { awaitedApproval, callMemoryOf, deniedRefusal, findPendingRequest, type ApprovalGateLike } from './approvals.ts';
import { screenToolOutput, type ScreenReport, type ScreenTarget } from './screening.ts';
import { actionNameFor, decideToolCall, formatRefusal, type AdapterOptions, type GateDecision, type GateLike } from './shared.ts';

/**
 * kavach/openai-agents: gate OpenAI Agents SDK function tools with a tool input guardrail.
 * - `kavachInputGuardrail(gate, opts)`: allow, or reject with the refusal text (the model gets it
 *   as the tool's output and the run goes on). The verdict is in the guardrail's `outputInfo`.
 * - `guardTool(tool, gate, opts)`: a copy of a function tool with that guardrail appended, and a
 *   `needsApproval` that is true while the gate waits for a person about the call (an approve
 *   policy, DESIGN §11): the run stops with an interruption, as for any tool that needs approval.
 *   Its schema and everything else are the original's; its `invoke` runs the original's and
 *   screens the result.
 * - `decideInterruption(gate, state, interruption, { approver, decision, note })` records the
 *   person's answer with the gate (audited, bound to the arguments), then approves or rejects the
 *   interruption in the run state. `state.approve` alone runs nothing: the guardrail asks the gate.
 * - What a permitted tool returns is screened with the gate's `[[screen]]` blocks (DESIGN §13):
 *   `guardTool` wraps the copy's `invoke`, so a redacted result keeps its shape and a withheld one
 *   becomes the OUTPUT_BLOCKED refusal text. For tools Kavach does not copy (MCP servers'
 *   `toolOutputGuardrails`), `kavachOutputGuardrail` does the same with the SDK's tool output
 *   guardrail: block rejects with the refusal; redact rejects with the redacted output as text (a
 *   guardrail can only allow or replace).
 * The runner may run input guardrails twice for one call (before and after a human approval);
 * the call id is the gate's callId, so the call is charged once. The gate judges the arguments
 * as the tool's schema hands them to `execute` (defaults filled in) where the SDK exposes its
 * parse (0.20+); otherwise, and for MCP tools, the model's raw JSON.
 */

export type { AdapterOptions, GateDecision, GateLike } from './shared.ts';
export type { ScreenReport } from './screening.ts';
export type { ApprovalGateLike } from './approvals.ts';

/** What the principal/session/environment functions receive. */
export interface AgentsRunContext<TContext = unknown> {
  /** Your app context: `run(agent, input, { context })`. */
  context: TContext;
  agentName: string;
}

export type AgentsAdapterOptions<TContext = unknown> = AdapterOptions<AgentsRunContext<TContext>>;

/** What `outputInfo` of Kavach's guardrail result holds. */
export interface KavachGuardrailInfo {
  kavach: GateDecision;
}

function argsOf(raw: string): unknown {
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    // Not JSON: let the gate see the raw text; the tool's own parser refuses it later anyway.
    return { input: raw };
  }
}

type PrepareInput = (tool: object, input: string) => { result: { success: boolean; value?: unknown } } | undefined;
let preparer: Promise<PrepareInput | undefined> | undefined;

/** The SDK's own parse of a function tool's arguments, where this SDK version exposes it (0.20+). */
function loadPreparer(): Promise<PrepareInput | undefined> {
  preparer ??= import('@openai/agents-core/utils/internal').then(
    (m: { prepareFunctionToolInput?: unknown }) =>
      typeof m.prepareFunctionToolInput === 'function' ? (m.prepareFunctionToolInput as PrepareInput) : undefined,
    () => undefined,
  );
  return preparer;
}

/**
 * The arguments as the tool's body will receive them: its schema fills defaults, drops the nulls
 * strict mode sends for optional fields, coerces and normalises before `execute` runs, and a refuse
 * policy must judge that, not the model's raw JSON. Arguments the schema rejects never reach the
 * tool; they are judged raw.
 */
async function argsForTool(tool: object | undefined, raw: string): Promise<unknown> {
  if (tool) {
    try {
      const prepared = (await loadPreparer())?.(tool, raw);
      if (prepared?.result.success === true) return prepared.result.value;
    } catch {
      // an async schema or a parser that throws: the tool's own call fails the same way
    }
  }
  return argsOf(raw);
}

/** The function tool a guardrail runs for: the one guardTool was given, else the agent's tool of that name. */
function toolFor(known: object | undefined, agent: { tools?: readonly unknown[] }, name: string): object | undefined {
  if (known) return known;
  const found = agent.tools?.find(
    (t) => (t as { type?: unknown; name?: unknown } | null)?.type === 'function' && (t as { name: unknown }).name === name,
  );
  return typeof found === 'object' && found !== null ? found : undefined;
}

const PERMITTED_LIMIT = 1024;
/** Permitted decisions by call id, per gate: the output screening of the same call records under that evaluation. */
const permittedCalls = new WeakMap<object, Map<string, ScreenTarget>>();

function notePermitted(gate: object, decision: GateDecision): void {
  if (!decision.allowed || decision.callId === undefined) return;
  let calls = permittedCalls.get(gate);
  if (!calls) permittedCalls.set(gate, (calls = new Map()));
  calls.delete(decision.callId);
  calls.set(decision.callId, decision);
  if (calls.size > PERMITTED_LIMIT) calls.delete(calls.keys().next().value as string);
}

/** The permitted decision for a call id, taken once; else a target with a fresh evaluation id. */
function targetFor(gate: object, opts: AgentsAdapterOptions<never>, toolName: string, callId: string | undefined): ScreenTarget {
  const calls = permittedCalls.get(gate);
  const found = callId !== undefined ? calls?.get(callId) : undefined;
  if (found && callId !== undefined) {
    calls?.delete(callId);
    if (found.toolName === toolName) return found;
  }
  // Not evaluated by Kavach's input guardrail in this process: screened all the same.
  return { toolName, actionName: actionNameFor(opts, toolName), callId, verdict: { evaluationId: randomUUID() } };
}

export function kavachInputGuardrail<TContext = unknown>(
  gate: GateLike,
  opts: AgentsAdapterOptions<TContext> & { name?: string },
): ToolInputGuardrailDefinition<TContext> {
  return inputGuardrail(gate, opts, undefined);
}

function inputGuardrail<TContext>(
  gate: GateLike,
  opts: AgentsAdapterOptions<TContext> & { name?: string },
  tool: object | undefined,
): ToolInputGuardrailDefinition<TContext> {
  return {
    type: 'tool_input',
    name: opts.name ?? 'kavach',
    run: async ({ context, agent, toolCall }): Promise<ToolGuardrailFunctionOutput> => {
      const run: AgentsRunContext<TContext> = { context: context.context, agentName: agent.name };
      const args = await argsForTool(toolFor(tool, agent, toolCall.name), toolCall.arguments);
      const decision = await decideToolCall(
        gate,
        opts,
        { toolName: toolCall.name, args, callId: toolCall.callId, run },
        { memory: callMemoryOf(gate), role: 'run' },
      );
      const outputInfo: KavachGuardrailInfo = { kavach: decision };
      notePermitted(gate, decision);
      if (decision.allowed) return { behavior: { type: 'allow' }, outputInfo };
      return { behavior: { type: 'rejectContent', message: decision.refusal }, outputInfo };
    },
  };
}

/**
 * A copy of a function tool with Kavach's input guardrail appended (it runs after the tool's
 * own guardrails, so a call another guardrail rejects is not charged). Every other property is
 * the original's, so types and schema are unchanged; `invoke` runs the original's and screens
 * what it returns.
 */
export function guardTool<T extends FunctionToolLike>(
  tool: T,
  gate: GateLike,
  opts: AgentsAdapterOptions<ContextOf<T>> & { name?: string },
): T {
  const descriptors = Object.getOwnPropertyDescriptors(tool) as Record<string | symbol, PropertyDescriptor>;
  const existing = (tool.inputGuardrails ?? []) as readonly ToolInputGuardrailDefinition<ContextOf<T>>[];
  descriptors.inputGuardrails = {
    value: [...existing, inputGuardrail(gate, opts, tool)],
    writable: true,
    enumerable: true,
    configurable: true,
  };
  const invoke = (tool as { invoke?: unknown }).invoke;
  if (typeof invoke === 'function') {
    descriptors.invoke = {
      value: screenedInvoke(gate, opts as AgentsAdapterOptions<never>, tool.name, invoke as Invoke),
      writable: true,
      enumerable: descriptors.invoke?.enumerable ?? true,
      configurable: true,
    };
  }
  const own = (tool as { needsApproval?: unknown }).needsApproval;
  if (typeof own === 'function' || own === undefined) {
    descriptors.needsApproval = {
      value: needsApprovalFor(gate, opts, tool.name, own as ApprovalCheck | undefined),
      writable: true,
      enumerable: true,
      configurable: true,
    };
  }
  return Object.create(Object.getPrototypeOf(tool) as object, descriptors) as T;
}

type Invoke = (runContext: unknown, input: string, details?: { toolCall?: { callId?: string } }) => Promise<unknown>;

/** The tool's invoke, its result screened: redacted in shape, or the OUTPUT_BLOCKED refusal text. */
function screenedInvoke(gate: GateLike, opts: AgentsAdapterOptions<never>, toolName: string, invoke: Invoke): Invoke {
  return async function (this: unknown, runContext, input, details) {
    const started = performance.now();
    const output = await invoke.call(this, runContext, input, details);
    const target = targetFor(gate, opts, toolName, details?.toolCall?.callId);
    const screened = screenToolOutput(gate, opts, target, output, started);
    return screened.withheld ? formatRefusal(screened.withheld) : screened.output;
  };
}

/** What `outputInfo` of Kavach's output guardrail holds when screening found something. */
export interface KavachOutputGuardrailInfo {
  kavach: ScreenReport;
}

/**
 * A tool output guardrail that screens what a tool returned, for tools `guardTool` does not copy
 * (an MCP server's `toolOutputGuardrails`, say). A guardrail can only let an output through or
 * replace it with text: block replaces it with the OUTPUT_BLOCKED refusal, redact with the
 * redacted output (JSON text when it was not a string), report lets it through. Not needed on a
 * `guardTool` copy, whose invoke screens already.
 */
export function kavachOutputGuardrail<TContext = unknown>(
  gate: GateLike,
  opts: AgentsAdapterOptions<TContext> & { name?: string },
): ToolOutputGuardrailDefinition<TContext> {
  return {
    type: 'tool_output',
    name: opts.name ?? 'kavach-screen',
    run: async ({ toolCall, output }): Promise<ToolGuardrailFunctionOutput> => {
      let report: ScreenReport | undefined;
      const options = { ...opts, onScreen: (r: ScreenReport) => ((report = r), opts.onScreen?.(r)) };
      const target = targetFor(gate, opts as AgentsAdapterOptions<never>, toolCall.name, toolCall.callId);
      const screened = screenToolOutput(gate, options, target, output, performance.now());
      const outputInfo = report ? ({ kavach: report } satisfies KavachOutputGuardrailInfo) : undefined;
      if (screened.withheld) return { behavior: { type: 'rejectContent', message: formatRefusal(screened.withheld) }, outputInfo };
      if (screened.output === output) return { behavior: { type: 'allow' }, outputInfo };
      const text = typeof screened.output === 'string' ? screened.output : JSON.stringify(screened.output);
      return { behavior: { type: 'rejectContent', message: text }, outputInfo };
    },
  };
}

type ApprovalCheck = (runContext: { context: unknown }, input: unknown, callId?: string) => Promise<boolean>;

/**
 * The tool's `needsApproval`, asking the gate first: true while the gate waits for a person about
 * this call; a refusal is left to the guardrail (nobody need be asked about it); otherwise the
 * tool's own answer. The decision is handed to the guardrail of the same call, so a grant's use
 * is taken once. (The SDK does not say which agent asks here: `agentName` is empty.)
 */
function needsApprovalFor<TContext>(
  gate: GateLike,
  opts: AgentsAdapterOptions<TContext>,
  toolName: string,
  own: ApprovalCheck | undefined,
): ApprovalCheck {
  const memory = callMemoryOf(gate);
  return async function (this: unknown, runContext, input, callId) {
    const run: AgentsRunContext<TContext> = { context: runContext.context as TContext, agentName: '' };
    const decision = await decideToolCall(gate, opts, { toolName, args: input, callId, run }, { memory, role: 'ask' });
    if (awaitedApproval(decision)) return true;
    if (!decision.allowed) return false;
    return own ? own.call(this, runContext, input, callId) : false;
  };
}

// ---- the person's answer ----------------------------------------------------------------------

/** The parts of a RunState (or `result.state`) Kavach uses. */
export interface RunStateLike {
  approve(item: RunToolApprovalItem, options?: { alwaysApprove?: boolean }): void;
  reject(item: RunToolApprovalItem, options?: { alwaysReject?: boolean; message?: string }): void;
  /** The run context; its `context` is what the principal functions read when the request is looked up. */
  _context?: { context?: unknown };
}

export interface InterruptionDecision {
  /** The signed-in person who answered: from the app's session, never from the model. */
  approver: Principal;
  decision: 'grant' | 'deny';
  note?: string;
}

/**
 * Records a person's answer to an interruption with the gate, then approves it in the run state
 * (when the request is granted) or rejects it with the APPROVAL_DENIED refusal as the text the
 * model reads. While a quorum is incomplete the interruption is left as it is. Resume with
 * `run(agent, state)`. The request is the one this process saw asked for the call; after a
 * restart or on another replica pass `lookup` (the same options as guardTool) to find it from the
 * call. Throws ApprovalError (NOT_FOUND, SELF_APPROVAL, NOT_AN_APPROVER, EXPIRED, NOT_PENDING).
 */
export async function decideInterruption<TContext = unknown>(
  gate: ApprovalGateLike,
  state: RunStateLike,
  interruption: RunToolApprovalItem,
  answer: InterruptionDecision,
  lookup?: AgentsAdapterOptions<TContext>,
): Promise<ApprovalRequest> {
  const raw = interruption.rawItem as { type?: string; callId?: string; name?: string; arguments?: string };
  if (raw.type !== 'function_call' || typeof raw.callId !== 'string' || typeof raw.name !== 'string') {
    throw new ApprovalError('NOT_FOUND', '', 'only function tool calls are gated by Kavach');
  }
  let id = callMemoryOf(gate).requestFor(raw.callId);
  if (id === undefined && lookup) {
    const args = await argsForTool(toolFor(undefined, interruption.agent, raw.name), raw.arguments ?? '');
    const run: AgentsRunContext<TContext> = { context: state._context?.context as TContext, agentName: interruption.agent.name };
    id = (await findPendingRequest(gate, lookup, { toolName: raw.name, args, callId: raw.callId, run })).id;
  }
  if (id === undefined)
    throw new ApprovalError('NOT_FOUND', '', `no approval request known for tool call ${JSON.stringify(raw.callId)}; pass lookup options`);
  const request = await gate.approvals.decide(id, {
    approver: answer.approver,
    decision: answer.decision,
    ...(answer.note !== undefined ? { note: answer.note } : {}),
  });
  if (request.status === 'granted') state.approve(interruption);
  if (request.status === 'denied') state.reject(interruption, { message: deniedRefusal(request) });
  return request;
}

/** `guardTool` over a list, keeping its type. */
export function guardTools<T extends readonly FunctionToolLike[]>(
  tools: T,
  gate: GateLike,
  opts: AgentsAdapterOptions & { name?: string },
): T {
  return tools.map((tool) => guardTool(tool, gate, opts as AgentsAdapterOptions<ContextOf<typeof tool>>)) as unknown as T;
}

/** The shape of an Agents SDK FunctionTool that Kavach relies on. */
export interface FunctionToolLike {
  type: 'function';
  name: string;
  inputGuardrails?: readonly unknown[];
}

/** The run-context type a function tool was declared with. */
export type ContextOf<T> = T extends { inputGuardrails?: ToolInputGuardrailDefinition<infer C>[] } ? C : unknown;
