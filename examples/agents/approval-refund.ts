/**
 * `npm run example:approval`: a refund over the limit waits for a person.
 * A LangChain refund agent behind Kavach (kavachMiddleware) with a checkpointer: a refund the
 * policy sends to finance pauses the run with LangGraph's interrupt(); a person answers; the
 * answer is recorded with the gate (bound to that exact order and amount, in the signed audit
 * log) and the run resumes with Command({ resume }). The tool runs only on the gate's permit.
 *
 * In a terminal you are the finance lead: the request is shown and you answer y/n. In CI (CI=true)
 * or without a terminal a scripted approver answers after showing the request: the first large
 * refund is granted, the second denied. Offline by default (LangChain's fake model, scripted);
 * with OPENAI_API_KEY set and @langchain/openai installed it uses a real model.
 */
import { createInterface } from 'node:readline/promises';
import { AIMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { fakeModel } from '@langchain/core/testing';
import { tool } from '@langchain/core/tools';
import { Command, MemorySaver } from '@langchain/langgraph';
import { createAgent } from 'langchain';
import { z } from 'zod';
import { kavachMiddleware, type KavachApprovalAnswer, type KavachApprovalInterrupt } from '../../src/adapters/langchain.ts';
import type { GateDecision } from '../../src/adapters/shared.ts';
import type { Principal } from '../../src/engine/context.ts';
import { modelBanner, setupKavach } from './support.ts';

const kv = await setupKavach('approval-refund', 'refund-approval.toml', { id: 'refund-bot', kind: 'agent', roles: ['support'] });
const t = kv.transcript;
const financeLead: Principal = { id: 'fiona', kind: 'user', roles: ['finance'] };
const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true && !process.env.CI;

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

const turns = [
  { title: '1. a refund the agent may do alone', user: 'Please refund order A-1001, $40: the mug arrived broken.' },
  { title: '2. a refund over the limit: it waits for finance', user: 'Order A-1002 was a $900 TV that never arrived. Refund it in full.' },
  { title: '3. another one over the limit', user: 'And A-1003, the $1200 sofa, please refund that too.' },
];

function scriptedModel() {
  const call = (orderId: string, amount: number, id: string) => [{ name: 'refund', args: { orderId, amount }, id }];
  return fakeModel()
    .respondWithTools(call('A-1001', 40, 'ap-1'))
    .respond(new AIMessage('Done: $40 is on its way back for A-1001.'))
    .respondWithTools(call('A-1002', 900, 'ap-2'))
    .respond(new AIMessage('Finance approved it: $900 is on its way back for A-1002.'))
    .respondWithTools(call('A-1003', 1200, 'ap-3'))
    .respond(new AIMessage('Finance did not approve the $1200 refund for A-1003; a colleague will contact you about it.'));
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

/** The transcript line per verdict; a request shown once even though the run re-evaluates it on resume. */
const shown = new Set<string>();
function onDecision(d: GateDecision): void {
  const v = d.verdict;
  if (v.kind === 'refuse' && v.code === 'APPROVAL_REQUIRED' && v.approval) {
    if (shown.has(v.approval.id)) return;
    shown.add(v.approval.id);
    t.line(`agent tried   → ${d.toolName}(${JSON.stringify(d.params ?? {})})${d.callId ? `  [${d.callId}]` : ''}`);
    t.line(`kavach        ⏸ WAITS FOR A PERSON [APPROVAL_REQUIRED] request ${v.approval.id.slice(0, 8)}…`);
    return;
  }
  t.decision(d);
}

// One reader for the whole run: answers typed ahead are kept for the next question.
const prompt = interactive ? createInterface({ input: process.stdin, output: process.stdout }) : undefined;

/** The finance lead's answer: asked in a terminal, scripted otherwise (grant the first, deny the rest). */
let scriptedAnswers = 0;
async function askFinance(request: KavachApprovalInterrupt): Promise<KavachApprovalAnswer> {
  t.line('approval      ┌ a person must decide this call');
  t.line(`              │ tool:    ${request.tool} (${request.action})`);
  t.line(`              │ args:    ${JSON.stringify(request.args)}`);
  t.line(`              │ why:     ${request.reason} (policy '${request.policy}')`);
  t.line(`              │ request: ${request.id}, open until ${new Date(request.expiresAt).toISOString()}`);
  if (prompt) {
    const yes = /^y(es)?$/i.test((await prompt.question(`              └ approve as ${financeLead.id} (finance)? [y/N] `)).trim());
    const note = (await prompt.question('                note (optional): ')).trim();
    return { decision: yes ? 'grant' : 'deny', approver: financeLead, ...(note ? { note } : {}) };
  }
  const grant = scriptedAnswers++ === 0;
  t.line(
    `              └ scripted approver (${process.env.CI ? 'CI' : 'no terminal'}): ${financeLead.id} ${grant ? 'GRANTS' : 'DENIES'} it`,
  );
  return grant
    ? { decision: 'grant', approver: financeLead, note: 'order verified: never delivered' }
    : { decision: 'deny', approver: financeLead, note: 'needs a return first' };
}

const real = await realModel();
modelBanner(
  'LangChain refund agent with a person in the loop (Kavach approvals)',
  real ? `ChatOpenAI ${process.env.OPENAI_MODEL ?? 'gpt-4o-mini'}` : undefined,
);
t.note(interactive ? 'you are the finance lead: answer the approval prompts' : 'no terminal (or CI): a scripted finance lead answers');

const agent = createAgent({
  model: real ?? scriptedModel(),
  tools: [refund],
  systemPrompt: 'You are a refund-support agent. Use the refund tool. When a call is refused, explain the refusal to the customer.',
  checkpointer: new MemorySaver(),
  middleware: [kavachMiddleware(kv.gate, { principal: kv.principal, sessionId: kv.sessionId, environment: kv.environment, onDecision })],
});

const config = { configurable: { thread_id: kv.sessionId } };
let seen = 0;
for (const turn of turns) {
  t.phase(turn.title);
  t.user(turn.user);
  let result = await agent.invoke({ messages: [{ role: 'user', content: turn.user }] }, config);
  for (;;) {
    const pending = ((result as { __interrupt__?: Array<{ id?: string; value?: unknown }> }).__interrupt__ ?? []).filter(
      (i) => (i.value as KavachApprovalInterrupt | undefined)?.type === 'kavach.approval',
    );
    if (pending.length === 0) break;
    const answers: Record<string, KavachApprovalAnswer> = {};
    for (const i of pending) answers[i.id ?? ''] = await askFinance(i.value as KavachApprovalInterrupt);
    const resume = pending.length === 1 ? Object.values(answers)[0] : answers;
    result = await agent.invoke(new Command({ resume }), config);
  }
  const added: BaseMessage[] = result.messages.slice(seen);
  seen = result.messages.length;
  for (const m of added) if (ToolMessage.isInstance(m)) t.modelSaw(m.tool_call_id, m.content);
  const last = result.messages.at(-1);
  if (last && !ToolMessage.isInstance(last)) t.modelSays(typeof last.content === 'string' ? last.content : JSON.stringify(last.content));
}

for (const r of await kv.gate.approvals.list()) {
  const d = r.decisions.map((x) => `${x.decision} by ${x.approver.id}${x.note ? ` ("${x.note}")` : ''}`).join(', ');
  t.line(`request ${r.id.slice(0, 8)}…  ${r.status.padEnd(7)} ${JSON.stringify(r.args)}  ${d}`);
}
prompt?.close();
await kv.finish();
