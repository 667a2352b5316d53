import {
  Agent,
  Runner,
  tool,
  Usage,
  type AgentInputItem,
  type AgentOutputItem,
  type Model,
  type ModelRequest,
  type ModelResponse,
  type StreamEvent,
} from '@openai/agents';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decideInterruption, guardTool, type ApprovalGateLike } from '../../src/adapters/openai-agents.ts';
import { agent as principal } from './fixtures.ts';
import { approvalRig, financeLead, intern } from './approval-fixtures.ts';

type Step = { call: { id: string; args: unknown } } | { text: string };

/** A scripted Model: each getResponse answers the next step and records the input it was given. */
class ScriptedModel implements Model {
  readonly inputs: Array<ModelRequest['input']> = [];
  constructor(private readonly steps: Step[]) {}
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.inputs.push(request.input);
    const step = this.steps[this.inputs.length - 1];
    if (!step) throw new Error('script exhausted');
    const output: AgentOutputItem[] =
      'text' in step
        ? [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: step.text }] }]
        : [{ type: 'function_call', callId: step.call.id, name: 'refund', arguments: JSON.stringify(step.call.args), status: 'completed' }];
    return { usage: new Usage(), output };
  }
  // biome-ignore lint/correctness/useYield: a fake model that never streams
  async *getStreamedResponse(): AsyncIterable<StreamEvent> {
    throw new Error('not scripted');
  }
}

function refundTool(ran: unknown[]) {
  return tool({
    name: 'refund',
    description: 'Refund an order, in dollars.',
    parameters: z.object({ amount: z.number(), orderId: z.string() }),
    execute: async (input) => {
      ran.push(input);
      return `refunded ${input.amount}`;
    },
  });
}

/** The function results the model was shown in its n-th call. */
function resultsSeen(model: ScriptedModel, call: number): string[] {
  const input = model.inputs[call];
  if (!Array.isArray(input)) return [];
  return (input as AgentInputItem[])
    .filter((i): i is Extract<AgentInputItem, { type: 'function_call_result' }> => i.type === 'function_call_result')
    .map((i) => (typeof i.output === 'string' ? i.output : ((i.output as { text?: string }).text ?? JSON.stringify(i.output))));
}

const runner = new Runner({ tracingDisabled: true });

async function refundRun(steps: Step[]) {
  const rig = await approvalRig();
  const ran: unknown[] = [];
  const model = new ScriptedModel(steps);
  const opts = { principal, onDecision: rig.onDecision };
  const bot = new Agent({ name: 'finance', model, tools: [guardTool(refundTool(ran), rig.gate, opts)] });
  const first = await runner.run(bot, 'refund B7');
  return { rig, ran, model, bot, first, opts };
}

describe('openai agents needsApproval + decideInterruption', () => {
  it('interrupts the run; a grant runs the tool once with exactly those arguments, and its permit carries apr', async () => {
    const { rig, ran, model, bot, first } = await refundRun([
      { call: { id: 'call-1', args: { amount: 900, orderId: 'B7' } } },
      { text: 'refunded' },
    ]);
    expect(ran).toEqual([]);
    expect(first.interruptions).toHaveLength(1);
    const [item] = first.interruptions;
    if (!item) throw new Error('no interruption');
    const request = await decideInterruption(rig.gate, first.state, item, { approver: financeLead, decision: 'grant', note: 'ok' });
    expect(request).toMatchObject({ status: 'granted', action: 'refund', args: { amount: 900, orderId: 'B7' } });

    const done = await runner.run(bot, first.state);
    expect(done.finalOutput).toBe('refunded');
    expect(ran).toEqual([{ amount: 900, orderId: 'B7' }]);
    expect(resultsSeen(model, 1)).toEqual(['refunded 900']);
    expect((await rig.permitClaims({ amount: 900, orderId: 'B7' })).apr).toBe(request.id);
    expect(await rig.finish()).toMatchObject({ approvals: ['requested:pending', 'granted:granted', 'used:used'] });
  });

  it('a deny never runs the tool, and the model reads APPROVAL_DENIED', async () => {
    const { rig, ran, model, bot, first } = await refundRun([
      { call: { id: 'call-1', args: { amount: 900, orderId: 'B7' } } },
      { text: 'not refunded' },
    ]);
    const [item] = first.interruptions;
    if (!item) throw new Error('no interruption');
    await decideInterruption(rig.gate, first.state, item, { approver: financeLead, decision: 'deny' });
    await runner.run(bot, first.state);
    expect(ran).toEqual([]);
    expect(resultsSeen(model, 1)).toEqual([
      expect.stringMatching(/^Refused by policy \[APPROVAL_DENIED\] approval: 'big_refunds_need_a_human'/),
    ]);
    expect(await rig.finish()).toMatchObject({ approvals: ['requested:pending', 'denied:denied'] });
  });

  it('state.approve alone runs nothing: the guardrail asks the gate, and the model reads APPROVAL_REQUIRED', async () => {
    const { rig, ran, model, bot, first } = await refundRun([
      { call: { id: 'call-1', args: { amount: 900, orderId: 'B7' } } },
      { text: 'waiting' },
    ]);
    const [item] = first.interruptions;
    if (!item) throw new Error('no interruption');
    first.state.approve(item);
    await runner.run(bot, first.state);
    expect(ran).toEqual([]);
    expect(resultsSeen(model, 1)).toEqual([expect.stringMatching(/^Refused by policy \[APPROVAL_REQUIRED\]/)]);
    await rig.finish();
  });

  it('a grant for one call does not cover the same tool with other arguments: that call interrupts again with a new request', async () => {
    const { rig, ran, bot, first } = await refundRun([
      { call: { id: 'call-1', args: { amount: 900, orderId: 'B7' } } },
      { call: { id: 'call-2', args: { amount: 950, orderId: 'B7' } } },
      { text: 'done' },
    ]);
    const [item] = first.interruptions;
    if (!item) throw new Error('no interruption');
    const granted = await decideInterruption(rig.gate, first.state, item, { approver: financeLead, decision: 'grant' });
    const second = await runner.run(bot, first.state);
    expect(ran).toEqual([{ amount: 900, orderId: 'B7' }]);
    expect(second.interruptions).toHaveLength(1);
    const pending = await rig.gate.approvals.list({ status: 'pending' });
    expect(pending.map((r) => r.args)).toEqual([{ amount: 950, orderId: 'B7' }]);
    expect(pending[0]?.id).not.toBe(granted.id);
    await rig.finish();
  });

  it('finds the request from the call after a restart (lookup options), and refuses an approver the policy does not name', async () => {
    const { rig, ran, bot, first, opts } = await refundRun([
      { call: { id: 'call-1', args: { amount: 900, orderId: 'B7' } } },
      { text: 'refunded' },
    ]);
    const [item] = first.interruptions;
    if (!item) throw new Error('no interruption');
    // Another process: same store, no memory of having asked.
    const restarted: ApprovalGateLike = { evaluate: (ctx, o) => rig.gate.evaluate(ctx, o), approvals: rig.gate.approvals };
    await expect(decideInterruption(restarted, first.state, item, { approver: financeLead, decision: 'grant' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(decideInterruption(restarted, first.state, item, { approver: intern, decision: 'grant' }, opts)).rejects.toMatchObject({
      code: 'NOT_AN_APPROVER',
    });
    const request = await decideInterruption(restarted, first.state, item, { approver: financeLead, decision: 'grant' }, opts);
    expect(request.status).toBe('granted');
    await runner.run(bot, first.state);
    expect(ran).toEqual([{ amount: 900, orderId: 'B7' }]);
    await rig.finish();
  });

  it('refunds under the limit run without an interruption, evaluated once for needsApproval and the guardrail', async () => {
    const { rig, ran, first } = await refundRun([{ call: { id: 'call-1', args: { amount: 40, orderId: 'A1' } } }, { text: 'done' }]);
    expect(first.interruptions).toHaveLength(0);
    expect(ran).toEqual([{ amount: 40, orderId: 'A1' }]);
    expect(rig.decisions).toHaveLength(1);
    await rig.finish();
  });
});
