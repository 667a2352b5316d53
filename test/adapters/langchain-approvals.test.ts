import { AIMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { tool } from '@langchain/core/tools';
import { Command, MemorySaver } from '@langchain/langgraph';
import { createAgent } from 'langchain';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { kavachMiddleware, type KavachApprovalInterrupt } from '../../src/adapters/langchain.ts';
import { agent } from './fixtures.ts';
import { approvalRig, financeLead, intern } from './approval-fixtures.ts';

function refundTool(ran: unknown[]) {
  return tool(
    async (input: { amount: number; orderId: string }) => {
      ran.push(input);
      return `refunded ${input.amount}`;
    },
    {
      name: 'refund',
      description: 'Refund an order, in dollars.',
      schema: z.object({ amount: z.number(), orderId: z.string() }),
    },
  );
}

function toolMessages(messages: BaseMessage[]): ToolMessage[] {
  return messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m));
}

/** An agent whose model asks for the given refunds, one per turn, then answers. */
async function refundAgent(
  calls: Array<{ amount: number; id: string }>,
  opts: { approver?: typeof financeLead; warnings?: string[] } = {},
) {
  const rig = await approvalRig();
  const ran: unknown[] = [];
  let model = fakeModel();
  for (const c of calls) model = model.respondWithTools([{ name: 'refund', args: { amount: c.amount, orderId: 'B7' }, id: c.id }]);
  model = model.respond(new AIMessage('done'));
  const middleware = kavachMiddleware(rig.gate, {
    principal: agent,
    sessionId: 's1',
    onDecision: rig.onDecision,
    ...(opts.approver ? { approver: opts.approver } : {}),
    ...(opts.warnings ? { onWarning: (m: string) => void opts.warnings?.push(m) } : {}),
  });
  const graph = createAgent({ model, tools: [refundTool(ran)], middleware: [middleware], checkpointer: new MemorySaver() });
  const config = { configurable: { thread_id: `t-${Math.random()}` } };
  return { rig, ran, graph, config };
}

/** The Kavach interrupt the run paused on (fails the test when it did not pause on one). */
function pausedOn(result: unknown): KavachApprovalInterrupt {
  const interrupts = (result as { __interrupt__?: Array<{ value: unknown }> }).__interrupt__ ?? [];
  const value = interrupts[0]?.value as KavachApprovalInterrupt | undefined;
  if (value?.type !== 'kavach.approval')
    throw new Error(`the run did not pause on a Kavach approval: ${JSON.stringify(result).slice(0, 300)}`);
  return value;
}

describe('langchain kavachMiddleware approvals (interrupt / Command resume)', () => {
  it('pauses with the request; resumed with a grant, the tool runs once with exactly those arguments and its permit carries apr', async () => {
    const { rig, ran, graph, config } = await refundAgent([{ amount: 900, id: 'call-1' }]);
    const first = await graph.invoke({ messages: [{ role: 'user', content: 'refund B7' }] }, config);
    const asked = pausedOn(first);
    expect(asked).toMatchObject({
      tool: 'refund',
      toolCallId: 'call-1',
      action: 'refund',
      args: { amount: 900, orderId: 'B7' },
      reason: 'refunds of 500 or more',
      policy: 'big_refunds_need_a_human',
      refusal: expect.stringMatching(/^Refused by policy \[APPROVAL_REQUIRED\]/),
    });
    expect(ran).toEqual([]);

    const done = await graph.invoke(new Command({ resume: { decision: 'grant', approver: financeLead, note: 'ok' } }), config);
    expect(ran).toEqual([{ amount: 900, orderId: 'B7' }]);
    expect(toolMessages(done.messages).map((m) => m.content)).toEqual(['refunded 900']);
    expect(done.messages.at(-1)?.content).toBe('done');
    expect((await rig.gate.approvals.get(asked.id))?.decisions).toMatchObject([
      { approver: { id: 'fiona' }, decision: 'grant', note: 'ok' },
    ]);
    expect((await rig.permitClaims({ amount: 900, orderId: 'B7' })).apr).toBe(asked.id);
    expect(await rig.finish()).toMatchObject({ approvals: ['requested:pending', 'granted:granted', 'used:used'] });
  });

  it('resumed with a deny, the tool never runs and the model reads APPROVAL_DENIED', async () => {
    const { rig, ran, graph, config } = await refundAgent([{ amount: 900, id: 'call-1' }], { approver: financeLead });
    pausedOn(await graph.invoke({ messages: [{ role: 'user', content: 'refund B7' }] }, config));
    const done = await graph.invoke(new Command({ resume: { decision: 'deny' } }), config);
    expect(ran).toEqual([]);
    const [refusal] = toolMessages(done.messages);
    expect(refusal?.status).toBe('error');
    expect(refusal?.content).toMatch(/^Refused by policy \[APPROVAL_DENIED\] approval: 'big_refunds_need_a_human'/);
    expect(refusal?.artifact).toMatchObject({ code: 'APPROVAL_DENIED' });
    expect(await rig.finish()).toMatchObject({ approvals: ['requested:pending', 'denied:denied'] });
  });

  it('a grant for one call does not cover the same tool with other arguments: that call asks again', async () => {
    const { rig, ran, graph, config } = await refundAgent(
      [
        { amount: 900, id: 'call-1' },
        { amount: 950, id: 'call-2' },
      ],
      { approver: financeLead },
    );
    const first = pausedOn(await graph.invoke({ messages: [{ role: 'user', content: 'refund B7' }] }, config));
    const second = await graph.invoke(new Command({ resume: { decision: 'grant' } }), config);
    const again = pausedOn(second);
    expect(again.id).not.toBe(first.id);
    expect(again.args).toEqual({ amount: 950, orderId: 'B7' });
    expect(ran).toEqual([{ amount: 900, orderId: 'B7' }]);
    await rig.finish();
  });

  it('an approver the policy does not name decides nothing: the call stays refused APPROVAL_REQUIRED, and the app hears why', async () => {
    const warnings: string[] = [];
    const { rig, ran, graph, config } = await refundAgent([{ amount: 900, id: 'call-1' }], { warnings });
    pausedOn(await graph.invoke({ messages: [{ role: 'user', content: 'refund B7' }] }, config));
    const done = await graph.invoke(new Command({ resume: { decision: 'grant', approver: intern } }), config);
    expect(ran).toEqual([]);
    expect(toolMessages(done.messages)[0]?.content).toMatch(/^Refused by policy \[APPROVAL_REQUIRED\]/);
    expect(warnings.join('\n')).toMatch(/the decision was not taken: ivan is not among the approvers/);
    await rig.finish();
  });

  it('a resume value that is not an answer decides nothing', async () => {
    const warnings: string[] = [];
    const { rig, ran, graph, config } = await refundAgent([{ amount: 900, id: 'call-1' }], { approver: financeLead, warnings });
    pausedOn(await graph.invoke({ messages: [{ role: 'user', content: 'refund B7' }] }, config));
    const done = await graph.invoke(new Command({ resume: 'yes please' }), config);
    expect(ran).toEqual([]);
    expect(toolMessages(done.messages)[0]?.content).toMatch(/\[APPROVAL_REQUIRED\]/);
    expect(warnings.join('\n')).toMatch(/resume value is not/);
    expect(await rig.gate.approvals.list({ status: 'pending' })).toHaveLength(1);
    await rig.finish();
  });

  it('without a checkpointer the model reads APPROVAL_REQUIRED (nothing can pause), as before', async () => {
    const rig = await approvalRig();
    const ran: unknown[] = [];
    const warnings: string[] = [];
    const model = fakeModel()
      .respondWithTools([{ name: 'refund', args: { amount: 900, orderId: 'B7' }, id: 'call-1' }])
      .respond(new AIMessage('waiting'));
    const graph = createAgent({
      model,
      tools: [refundTool(ran)],
      middleware: [kavachMiddleware(rig.gate, { principal: agent, onWarning: (m) => void warnings.push(m) })],
    });
    const result = await graph.invoke({ messages: [{ role: 'user', content: 'refund B7' }] });
    expect(ran).toEqual([]);
    expect(toolMessages(result.messages)[0]?.content).toMatch(/^Refused by policy \[APPROVAL_REQUIRED\]/);
    expect(warnings.join('\n')).toMatch(/cannot interrupt the run/);
    await rig.finish();
  });
});
