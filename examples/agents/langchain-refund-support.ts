/**
 * `npm run example:langchain`: a LangChain refund-support agent behind Kavach.
 * Offline by default (LangChain's own fake chat model, scripted); with OPENAI_API_KEY set and
 * @langchain/openai installed it uses a real model. The agent tries a permitted refund, a refund
 * over the limit, a burst of lookups that hits the rate limit, and — after the client's IP
 * changes — a call that invalidates the session, then one more that finds the session dead.
 */
import { AIMessage, ToolMessage, type BaseMessage, type BaseMessageLike } from '@langchain/core/messages';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { fakeModel } from '@langchain/core/testing';
import { tool } from '@langchain/core/tools';
import { createAgent } from 'langchain';
import { z } from 'zod';
import { kavachMiddleware } from '../../src/adapters/langchain.ts';
import { drift, modelBanner, setupKavach, type Phase } from './support.ts';

const kv = await setupKavach('langchain-refund-support', 'refund-support.toml', { id: 'refund-bot', kind: 'agent', roles: ['support'] });
const t = kv.transcript;

const refund = tool(
  async ({ orderId, amount }) => {
    const result = `refunded $${amount} to order ${orderId} (ref RF-${orderId.slice(-4)})`;
    t.toolRan('refund', result);
    return result;
  },
  {
    name: 'refund',
    description: 'Refund a customer order, amount in US dollars.',
    schema: z.object({ orderId: z.string(), amount: z.number().positive() }),
  },
);

const lookupOrder = tool(
  async ({ orderId }) => {
    const result = { orderId, status: 'delivered', total: 120 };
    t.toolRan('lookup_order', result);
    return JSON.stringify(result);
  },
  {
    name: 'lookup_order',
    description: 'Look up an order by id.',
    schema: z.object({ orderId: z.string() }),
  },
);

const phases: Phase[] = [
  { title: '1. a permitted refund', user: 'Please refund order A-1001, $40: the mug arrived broken.' },
  { title: '2. a refund over the limit', user: 'Order A-1002 was a $900 TV that never arrived. Refund it in full.' },
  {
    title: '3. a burst of lookups (rate limit: 3 a minute)',
    user: 'What is the status of orders A-1003, A-1004, A-1005, A-1006 and A-1007?',
  },
  { title: '4. drift: the next message comes from another IP', user: 'Refund A-1003, $20 please.', before: drift },
  { title: '5. the invalidated session', user: 'Hello? Refund A-1004, $10.' },
];

/** The fake model's script: per phase, the tool calls it makes and what it says after seeing the results. */
function scriptedModel() {
  const call = (name: string, args: Record<string, unknown>, id: string) => ({ name, args, id });
  return fakeModel()
    .respondWithTools([call('refund', { orderId: 'A-1001', amount: 40 }, 'lc-1')])
    .respond(new AIMessage('Done: $40 is on its way back for A-1001.'))
    .respondWithTools([call('refund', { orderId: 'A-1002', amount: 900 }, 'lc-2')])
    .respond(new AIMessage('I cannot refund $900 myself: refunds over $250 need a human. I have passed A-1002 to a colleague.'))
    .respondWithTools(['A-1003', 'A-1004', 'A-1005', 'A-1006', 'A-1007'].map((id, i) => call('lookup_order', { orderId: id }, `lc-3${i}`)))
    .respond(
      new AIMessage(
        'A-1003 to A-1005 are delivered. I hit the lookup rate limit for A-1006 and A-1007; I will check them in about a minute.',
      ),
    )
    .respondWithTools([call('refund', { orderId: 'A-1003', amount: 20 }, 'lc-4')])
    .respond(new AIMessage('For your security this session was ended (your connection changed). Please sign in again.'))
    .respondWithTools([call('refund', { orderId: 'A-1004', amount: 10 }, 'lc-5')])
    .respond(new AIMessage('This session is closed; please start a new one and I will pick up A-1004 there.'));
}

async function realModel(): Promise<BaseChatModel | undefined> {
  if (!process.env.OPENAI_API_KEY) return undefined;
  const pkg = '@langchain/openai';
  try {
    const { ChatOpenAI } = (await import(pkg)) as { ChatOpenAI: new (o: { model: string }) => BaseChatModel };
    return new ChatOpenAI({ model: process.env.OPENAI_MODEL ?? 'gpt-4o-mini' });
  } catch {
    t.note('OPENAI_API_KEY is set but @langchain/openai is not installed; using the scripted fake model');
    return undefined;
  }
}

const real = await realModel();
modelBanner('LangChain refund-support agent behind Kavach', real ? `ChatOpenAI ${process.env.OPENAI_MODEL ?? 'gpt-4o-mini'}` : undefined);

const agent = createAgent({
  model: real ?? scriptedModel(),
  tools: [refund, lookupOrder],
  systemPrompt:
    'You are a refund-support agent. Use the tools. When a tool call is refused, explain the refusal to the customer; do not retry it blindly.',
  middleware: [
    kavachMiddleware(kv.gate, {
      principal: kv.principal,
      sessionId: kv.sessionId,
      environment: kv.environment,
      onDecision: t.decision,
    }),
  ],
});

let history: BaseMessageLike[] = [];
for (const phase of phases) {
  t.phase(phase.title);
  phase.before?.(kv.net, t);
  t.user(phase.user);
  const before = history.length + 1;
  const result = await agent.invoke({ messages: [...history, { role: 'user', content: phase.user }] });
  const added: BaseMessage[] = result.messages.slice(before);
  for (const m of added) if (ToolMessage.isInstance(m)) t.modelSaw(m.tool_call_id, m.content);
  const last = result.messages.at(-1);
  if (last && !ToolMessage.isInstance(last)) t.modelSays(typeof last.content === 'string' ? last.content : JSON.stringify(last.content));
  history = result.messages;
}

await kv.finish();
