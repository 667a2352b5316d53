/**
 * `npm run example:openai-agents`: an OpenAI Agents SDK finance agent behind Kavach.
 * Offline by default (a scripted implementation of the SDK's `Model` interface); with
 * OPENAI_API_KEY set it runs on a real OpenAI model (OPENAI_MODEL, default gpt-4o-mini).
 * The agent makes a permitted transfer, tries one over the per-transfer limit, checks five
 * balances at once (rate limited), and — after the client's IP changes — makes a call that
 * invalidates the session, then one more that finds it dead.
 */
import {
  Agent,
  Runner,
  tool,
  Usage,
  user,
  type AgentInputItem,
  type AgentOutputItem,
  type Model,
  type ModelRequest,
  type ModelResponse,
  type StreamEvent,
} from '@openai/agents';
import { z } from 'zod';
import { guardTools } from '../../src/adapters/openai-agents.ts';
import type { Principal } from '../../src/engine/context.ts';
import { drift, modelBanner, setupKavach, type Phase } from './support.ts';

const principal: Principal = { id: 'treasury-bot', kind: 'agent', roles: ['treasury'] };
const kv = await setupKavach('openai-agents-finance', 'finance.toml', principal);
const t = kv.transcript;

/** The app's run context; Kavach takes the principal from here, never from the model. */
interface FinanceContext {
  principal: Principal;
}

const balances = new Map([
  ['OPS-1', 48_200],
  ['OPS-2', 9_100],
  ['PAY-1', 120_000],
  ['PAY-2', 3_300],
  ['RES-1', 1_000_000],
]);

const transfer = tool({
  name: 'transfer',
  description: 'Transfer US dollars between accounts.',
  parameters: z.object({ from: z.string(), to: z.string(), amount: z.number().positive() }),
  execute: async ({ from, to, amount }) => {
    balances.set(from, (balances.get(from) ?? 0) - amount);
    const result = `transferred $${amount} from ${from} to ${to}`;
    t.toolRan('transfer', result);
    return result;
  },
});

const getBalance = tool({
  name: 'get_balance',
  description: 'Read the balance of an account.',
  parameters: z.object({ account: z.string() }),
  execute: async ({ account }) => {
    const result = `${account}: $${balances.get(account) ?? 0}`;
    t.toolRan('get_balance', result);
    return result;
  },
});

const phases: Phase[] = [
  { title: '1. a permitted transfer', user: 'Pay vendor VENDOR-7 $1,200 from OPS-1.' },
  { title: '2. a transfer over the limit ($2,500 each)', user: 'Move $9,000 from PAY-1 to OPS-2 for payroll.' },
  { title: '3. a burst of balance checks (rate limit: 3 a minute)', user: 'Give me the balances of OPS-1, OPS-2, PAY-1, PAY-2 and RES-1.' },
  { title: '4. drift: the next message comes from another IP', user: 'Send $100 from OPS-2 to VENDOR-9.', before: drift },
  { title: '5. the invalidated session', user: 'Hello? Send $50 from OPS-2 to VENDOR-9.' },
];

type Step = { calls: Array<[id: string, name: string, args: unknown]> } | { text: string };

/** A scripted `Model`: answers the next step of the script, whatever it is asked. */
class ScriptedModel implements Model {
  private next = 0;
  constructor(private readonly steps: Step[]) {}
  async getResponse(_request: ModelRequest): Promise<ModelResponse> {
    const step = this.steps[this.next++];
    if (!step) throw new Error('the script has no more steps');
    const output: AgentOutputItem[] =
      'text' in step
        ? [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: step.text }] }]
        : step.calls.map(([callId, name, args]) => ({
            type: 'function_call' as const,
            callId,
            name,
            arguments: JSON.stringify(args),
            status: 'completed' as const,
          }));
    return { usage: new Usage(), output };
  }
  // biome-ignore lint/correctness/useYield: a fake model that never streams
  async *getStreamedResponse(): AsyncIterable<StreamEvent> {
    throw new Error('streaming is not scripted');
  }
}

const script: Step[] = [
  { calls: [['oa-1', 'transfer', { from: 'OPS-1', to: 'VENDOR-7', amount: 1200 }]] },
  { text: 'Paid: $1,200 from OPS-1 to VENDOR-7.' },
  { calls: [['oa-2', 'transfer', { from: 'PAY-1', to: 'OPS-2', amount: 9000 }]] },
  {
    text: 'I cannot move $9,000 in one transfer: anything over $2,500 needs a human approver. I have not split it to get around the limit.',
  },
  {
    calls: ['OPS-1', 'OPS-2', 'PAY-1', 'PAY-2', 'RES-1'].map((account, i): [string, string, unknown] => [
      `oa-3${i}`,
      'get_balance',
      { account },
    ]),
  },
  { text: 'I read three balances; the other two hit the limit of 3 balance checks a minute. I will fetch them shortly.' },
  { calls: [['oa-4', 'transfer', { from: 'OPS-2', to: 'VENDOR-9', amount: 100 }]] },
  { text: 'This session was ended for security because your connection changed. Please sign in again.' },
  { calls: [['oa-5', 'transfer', { from: 'OPS-2', to: 'VENDOR-9', amount: 50 }]] },
  { text: 'The session is closed; please start a new one.' },
];

const realModel = process.env.OPENAI_API_KEY ? (process.env.OPENAI_MODEL ?? 'gpt-4o-mini') : undefined;
modelBanner('OpenAI Agents SDK finance agent behind Kavach', realModel);

const agent = new Agent<FinanceContext>({
  name: 'finance',
  instructions:
    'You are a treasury agent. Use the tools. When a tool call is refused, explain the refusal; never retry it blindly or split an amount to get around a limit.',
  model: realModel ?? new ScriptedModel(script),
  tools: guardTools([transfer, getBalance], kv.gate, {
    principal: (run) => (run.context as FinanceContext | undefined)?.principal,
    sessionId: kv.sessionId,
    environment: kv.environment,
    onDecision: t.decision,
  }),
});
const runner = new Runner({ tracingDisabled: true });

function textOf(output: unknown): string {
  if (typeof output === 'string') return output;
  const text = (output as { text?: unknown } | undefined)?.text;
  return typeof text === 'string' ? text : JSON.stringify(output);
}

let history: AgentInputItem[] = [];
for (const phase of phases) {
  t.phase(phase.title);
  phase.before?.(kv.net, t);
  t.user(phase.user);
  const result = await runner.run(agent, [...history, user(phase.user)], { context: { principal } });
  for (const item of result.newItems) {
    if (item.type !== 'tool_call_output_item') continue;
    const raw = item.rawItem as { callId?: string; output?: unknown };
    t.modelSaw(raw.callId ?? '?', textOf(raw.output));
  }
  if (typeof result.finalOutput === 'string') t.modelSays(result.finalOutput);
  history = result.history;
}

await kv.finish();
