import type { ToolGuardrailFunctionOutput, ToolInputGuardrailDefinition } from '@openai/agents';
import { decideToolCall, type AdapterOptions, type GateDecision, type GateLike } from './shared.ts';

/**
 * kavach/openai-agents: gate OpenAI Agents SDK function tools with a tool input guardrail.
 * - `kavachInputGuardrail(gate, opts)`: allow, or reject with the refusal text (the model gets it
 *   as the tool's output and the run goes on). The verdict is in the guardrail's `outputInfo`.
 * - `guardTool(tool, gate, opts)`: a copy of a function tool with that guardrail appended; its
 *   `invoke`, schema and everything else are the original's.
 * The runner may run input guardrails twice for one call (before and after a human approval);
 * the call id is the gate's callId, so the call is charged once. The gate judges the arguments
 * as the tool's schema hands them to `execute` (defaults filled in) where the SDK exposes its
 * parse (0.20+); otherwise, and for MCP tools, the model's raw JSON.
 */

export type { AdapterOptions, GateDecision, GateLike } from './shared.ts';

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
    (m: { prepareFunctionToolInput?: unknown }) => (typeof m.prepareFunctionToolInput === 'function' ? m.prepareFunctionToolInput as PrepareInput : undefined),
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
  const found = agent.tools?.find((t) => (t as { type?: unknown; name?: unknown } | null)?.type === 'function' && (t as { name: unknown }).name === name);
  return typeof found === 'object' && found !== null ? found : undefined;
}

export function kavachInputGuardrail<TContext = unknown>(gate: GateLike, opts: AgentsAdapterOptions<TContext> & { name?: string }): ToolInputGuardrailDefinition<TContext> {
  return inputGuardrail(gate, opts, undefined);
}

function inputGuardrail<TContext>(gate: GateLike, opts: AgentsAdapterOptions<TContext> & { name?: string }, tool: object | undefined): ToolInputGuardrailDefinition<TContext> {
  return {
    type: 'tool_input',
    name: opts.name ?? 'kavach',
    run: async ({ context, agent, toolCall }): Promise<ToolGuardrailFunctionOutput> => {
      const run: AgentsRunContext<TContext> = { context: context.context, agentName: agent.name };
      const args = await argsForTool(toolFor(tool, agent, toolCall.name), toolCall.arguments);
      const decision = await decideToolCall(gate, opts, { toolName: toolCall.name, args, callId: toolCall.callId, run });
      const outputInfo: KavachGuardrailInfo = { kavach: decision };
      if (decision.allowed) return { behavior: { type: 'allow' }, outputInfo };
      return { behavior: { type: 'rejectContent', message: decision.refusal }, outputInfo };
    },
  };
}

/**
 * A copy of a function tool with Kavach's input guardrail appended (it runs after the tool's
 * own guardrails, so a call another guardrail rejects is not charged). Every other property,
 * `invoke` included, is the original's, so types and schema are unchanged.
 */
export function guardTool<T extends FunctionToolLike>(tool: T, gate: GateLike, opts: AgentsAdapterOptions<ContextOf<T>> & { name?: string }): T {
  const descriptors = Object.getOwnPropertyDescriptors(tool) as Record<string | symbol, PropertyDescriptor>;
  const existing = (tool.inputGuardrails ?? []) as readonly ToolInputGuardrailDefinition<ContextOf<T>>[];
  descriptors.inputGuardrails = { value: [...existing, inputGuardrail(gate, opts, tool)], writable: true, enumerable: true, configurable: true };
  return Object.create(Object.getPrototypeOf(tool) as object, descriptors) as T;
}

/** `guardTool` over a list, keeping its type. */
export function guardTools<T extends readonly FunctionToolLike[]>(tools: T, gate: GateLike, opts: AgentsAdapterOptions & { name?: string }): T {
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
