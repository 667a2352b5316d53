import type { ToolGuardrailFunctionOutput, ToolInputGuardrailDefinition } from '@openai/agents';
import { decideToolCall, type AdapterOptions, type GateDecision, type GateLike } from './shared.ts';

/**
 * kavach/openai-agents: gate OpenAI Agents SDK function tools with a tool input guardrail.
 * - `kavachInputGuardrail(gate, opts)`: allow, or reject with the refusal text (the model gets it
 *   as the tool's output and the run goes on). The verdict is in the guardrail's `outputInfo`.
 * - `guardTool(tool, gate, opts)`: a copy of a function tool with that guardrail appended; its
 *   `invoke`, schema and everything else are the original's.
 * The runner may run input guardrails twice for one call (before and after a human approval);
 * the call id is the gate's callId, so the call is charged once.
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

export function kavachInputGuardrail<TContext = unknown>(gate: GateLike, opts: AgentsAdapterOptions<TContext> & { name?: string }): ToolInputGuardrailDefinition<TContext> {
  return {
    type: 'tool_input',
    name: opts.name ?? 'kavach',
    run: async ({ context, agent, toolCall }): Promise<ToolGuardrailFunctionOutput> => {
      const run: AgentsRunContext<TContext> = { context: context.context, agentName: agent.name };
      const decision = await decideToolCall(gate, opts, { toolName: toolCall.name, args: argsOf(toolCall.arguments), callId: toolCall.callId, run });
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
  descriptors.inputGuardrails = { value: [...existing, kavachInputGuardrail(gate, opts)], writable: true, enumerable: true, configurable: true };
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
