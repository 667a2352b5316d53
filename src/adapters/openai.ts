import type { RunnableToolFunction } from 'openai/lib/RunnableFunction';
import type { ChatCompletionMessageToolCall, ChatCompletionToolMessageParam } from 'openai/resources/chat/completions';
import type { ResponseFunctionToolCall, ResponseInputItem } from 'openai/resources/responses/responses';
import { canonicalJson } from '../engine/canonical-json.ts';
import { refusalWithApprovalHint } from './approvals.ts';
import { screenToolError, screenToolOutput } from './screening.ts';
import { decideToolCall, formatRefusal, type AdapterOptions, type GateLike } from './shared.ts';

/**
 * kavach/openai: gate tool calls made through the OpenAI Node SDK (openai 5/6).
 * - `guardRunnableTools` for `client.chat.completions.runTools()`: a refused call returns the
 *   refusal text as the tool result (never a throw: a throw ends the runner).
 * - `gateToolCalls` for hand-rolled loops over Chat Completions `tool_calls` or Responses
 *   `function_call` items: one output per call id, refused or run.
 * What a permitted tool returns is screened with the gate's `[[screen]]` blocks (DESIGN §13)
 * before it becomes the tool message: redacted, or replaced by the OUTPUT_BLOCKED refusal text.
 * The OpenAI SDK has no approval seam: a call an approve policy holds for a person (DESIGN §11)
 * is answered with the APPROVAL_REQUIRED refusal plus how it will be decided (request id, until
 * when, "the same call runs once granted"). The person decides through `gate.approvals.decide`
 * (the app's own page, or the proxy's approvals page / `kavach approvals grant`).
 */

export type { AdapterOptions, GateDecision, GateLike } from './shared.ts';
export type { ScreenReport } from './screening.ts';

/** What the principal/session/environment functions receive. */
export interface OpenAIRunContext {
  /** `toolContext` given to runTools, or `context` given to gateToolCalls. */
  context: unknown;
}

export type OpenAIAdapterOptions = AdapterOptions<OpenAIRunContext>;

type Callback = (args: unknown, runner: unknown, toolContext: unknown) => unknown;

interface RunnerToolCall {
  id: string;
  type?: string;
  function?: { name: string; arguments: string };
}
interface RunnerMessage {
  role?: string;
  tool_calls?: readonly RunnerToolCall[];
}
interface RunnerLike {
  messages?: readonly RunnerMessage[];
}

/** Arguments as the gate sees them: runTools hands over a string when the tool has no `parse`. */
function argsObject(args: unknown): unknown {
  if (typeof args !== 'string') return args;
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return { input: args };
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}

/**
 * runTools does not pass the tool-call id to the function, so find it: the latest assistant
 * message's calls of this tool, the first not yet claimed whose arguments match (else the first
 * unclaimed one of this name). Claims are per runner, so identical parallel calls get distinct ids.
 */
const claimed = new WeakMap<object, Set<string>>();
function findCallId(runner: unknown, name: string, args: unknown): string | undefined {
  if (!runner || typeof runner !== 'object') return undefined;
  const messages: readonly RunnerMessage[] | undefined = (runner as RunnerLike).messages;
  if (!Array.isArray(messages)) return undefined;
  let taken = claimed.get(runner);
  if (!taken) claimed.set(runner, (taken = new Set()));
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    const calls = message?.role === 'assistant' ? message.tool_calls : undefined;
    if (!calls?.length) continue;
    const open = calls.filter((c: RunnerToolCall) => c.function?.name === name && !taken.has(c.id));
    const match = open.find((c: RunnerToolCall) => sameJson(argsObject(c.function?.arguments), args)) ?? open[0];
    if (match) taken.add(match.id);
    return match?.id;
  }
  return undefined;
}

function guardCallback(callback: Callback, name: string, gate: GateLike, opts: OpenAIAdapterOptions): Callback {
  const guarded: Callback = async function (this: unknown, args, runner, toolContext) {
    const params = argsObject(args);
    const callId = findCallId(runner, name, params);
    const decision = await decideToolCall(gate, opts, { toolName: name, args: params, callId, run: { context: toolContext } });
    if (!decision.allowed) return refusalWithApprovalHint(decision);
    const started = performance.now();
    let output: unknown;
    try {
      output = await callback.call(this, args, runner, toolContext);
    } catch (err) {
      // The error leaves the run for the application, which may log it, show it or hand it to the model.
      throw screenToolError(gate, opts, decision, err, started);
    }
    const screened = screenToolOutput(gate, opts, decision, output, started);
    return screened.withheld ? formatRefusal(screened.withheld) : screened.output;
  };
  // runTools names a tool without `name` after its function: the guard must carry that name.
  Object.defineProperty(guarded, 'name', { value: callback.name, configurable: true });
  return guarded;
}

function copyWith<T extends object>(source: T, overrides: Record<string, unknown>): T {
  const descriptors = Object.getOwnPropertyDescriptors(source) as Record<string, PropertyDescriptor>;
  for (const [key, value] of Object.entries(overrides)) {
    // Keep each property's enumerability (the SDK hides $callback); only the value changes.
    descriptors[key] = {
      ...descriptors[key],
      value,
      writable: descriptors[key]?.writable ?? true,
      enumerable: descriptors[key]?.enumerable ?? true,
    };
    delete descriptors[key].get;
    delete descriptors[key].set;
  }
  return Object.create(Object.getPrototypeOf(source) as object, descriptors) as T;
}

type RunnableToolLike = RunnableToolFunction<object | string> | { type: 'function'; function: { name: string }; $callback?: unknown };

/**
 * Guarded copies of runTools tools: `{ type: 'function', function: { function, parse?, ... } }`
 * and auto-parseable tools (`zodFunction`, `$callback`). Names, descriptions, parameters, parse
 * and the array's type are kept.
 */
export function guardRunnableTools<const T extends readonly unknown[]>(tools: T, gate: GateLike, opts: OpenAIAdapterOptions): T {
  return tools.map((tool) => {
    const t = tool as RunnableToolLike & { $callback?: Callback };
    if (typeof t !== 'object' || t === null || t.type !== 'function') return tool;
    const fn = t.function as { name?: string; function?: Callback };
    if (typeof t.$callback === 'function') {
      const name = fn.name ?? t.$callback.name;
      return copyWith(t, { $callback: guardCallback(t.$callback, name, gate, opts) });
    }
    if (typeof fn.function === 'function') {
      const name = fn.name ?? fn.function.name;
      return copyWith(t, { function: copyWith(fn, { function: guardCallback(fn.function, name, gate, opts) }) });
    }
    return tool;
  }) as unknown as T;
}

// ---- hand-rolled loops -------------------------------------------------------------------------

/** Runs one tool. `args` are the parsed JSON arguments; `call.run` is the run context. */
export type ToolHandler = (args: Record<string, unknown>, call: { callId: string; name: string; context: unknown }) => unknown;

export interface GateToolCallsOptions extends OpenAIAdapterOptions {
  /** The run context handed to principal/session/environment functions and handlers. */
  context?: unknown;
}

type ChatCall = ChatCompletionMessageToolCall;
type ResponsesCall = ResponseFunctionToolCall;
type ResponsesOutput = ResponseInputItem.FunctionCallOutput;

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return String(value);
  }
}

/**
 * Gates and runs the tool calls of one model turn, in order, one output per call id:
 * the handler's result, or the refusal text. Never throws for a refused call, bad JSON, an
 * unknown tool or a handler error: each becomes that call's output so the model can go on.
 * Chat Completions calls give `role: 'tool'` messages; Responses `function_call` items give
 * `function_call_output` items.
 */
export async function gateToolCalls(
  toolCalls: readonly ChatCall[],
  handlers: Record<string, ToolHandler>,
  gate: GateLike,
  opts: GateToolCallsOptions,
): Promise<ChatCompletionToolMessageParam[]>;
export async function gateToolCalls(
  toolCalls: readonly ResponsesCall[],
  handlers: Record<string, ToolHandler>,
  gate: GateLike,
  opts: GateToolCallsOptions,
): Promise<ResponsesOutput[]>;
export async function gateToolCalls(
  toolCalls: readonly (ChatCall | ResponsesCall)[],
  handlers: Record<string, ToolHandler>,
  gate: GateLike,
  opts: GateToolCallsOptions,
): Promise<Array<ChatCompletionToolMessageParam | ResponsesOutput>> {
  const outputs: Array<ChatCompletionToolMessageParam | ResponsesOutput> = [];
  const seen = new Set<string>();
  for (const call of toolCalls) {
    const { callId, name, rawArgs, responses } = describeCall(call);
    // The gate charges a repeated call id once, so a second copy in the same turn must not run.
    const output = seen.has(callId)
      ? `Tool call id '${callId}' is listed more than once in this turn; the repeat was not run.`
      : await runOne(callId, name, rawArgs, handlers, gate, opts);
    seen.add(callId);
    outputs.push(
      responses ? { type: 'function_call_output', call_id: callId, output } : { role: 'tool', tool_call_id: callId, content: output },
    );
  }
  return outputs;
}

function describeCall(call: ChatCall | ResponsesCall): { callId: string; name: string; rawArgs: string; responses: boolean } {
  if (call.type === 'function_call') return { callId: call.call_id, name: call.name, rawArgs: call.arguments, responses: true };
  if (call.type === 'custom')
    return { callId: call.id, name: call.custom.name, rawArgs: JSON.stringify({ input: call.custom.input }), responses: false };
  return { callId: call.id, name: call.function.name, rawArgs: call.function.arguments, responses: false };
}

async function runOne(
  callId: string,
  name: string,
  rawArgs: string,
  handlers: Record<string, ToolHandler>,
  gate: GateLike,
  opts: GateToolCallsOptions,
): Promise<string> {
  const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
  if (!handler) return `Unknown tool '${name}'. Available tools: ${Object.keys(handlers).join(', ')}.`;
  let args: unknown;
  try {
    args = rawArgs.trim() === '' ? {} : JSON.parse(rawArgs);
  } catch {
    return `The arguments for '${name}' are not valid JSON; the call was not run.`;
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args))
    return `The arguments for '${name}' must be a JSON object; the call was not run.`;
  const decision = await decideToolCall(gate, opts, { toolName: name, args, callId, run: { context: opts.context } });
  if (!decision.allowed) return refusalWithApprovalHint(decision);
  const started = performance.now();
  let output: string;
  let outcome: 'ok' | 'tool_error' = 'ok';
  try {
    output = stringify(await handler(args as Record<string, unknown>, { callId, name, context: opts.context }));
  } catch (err) {
    // The error's text reaches the model too, so it is screened like a result.
    output = `Tool '${name}' failed: ${(err as Error)?.message ?? String(err)}`;
    outcome = 'tool_error';
  }
  const screened = screenToolOutput(gate, opts, decision, output, started, outcome);
  return screened.withheld ? formatRefusal(screened.withheld) : screened.output;
}
