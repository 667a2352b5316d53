import { generateText, stepCountIs, tool, type ModelMessage } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { guardTools, kavachApprovalResponse, kavachToolApproval, type ToolApprovalEventLike } from '../../src/adapters/ai-sdk.ts';
import { ApprovalError } from '../../src/engine/approvals/types.ts';
import { agent } from './fixtures.ts';
import { approvalRig, financeLead, intern } from './approval-fixtures.ts';

type GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;
const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};
const toolCall = (toolCallId: string, input: unknown): GenerateResult => ({
  content: [{ type: 'tool-call', toolCallId, toolName: 'refund', input: JSON.stringify(input) }],
  finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
  usage,
  warnings: [],
});
const text = (t: string): GenerateResult => ({
  content: [{ type: 'text', text: t }],
  finishReason: { unified: 'stop', raw: 'stop' },
  usage,
  warnings: [],
});

function refundTools(ran: unknown[]) {
  return {
    refund: tool({
      description: 'Refund an order, in dollars.',
      inputSchema: z.object({ amount: z.number(), orderId: z.string() }),
      execute: async (input) => {
        ran.push(input);
        return { refunded: input.amount };
      },
    }),
  };
}

/** The approval request the SDK emitted in a step (fails the test when there is none). */
function approvalRequestOf(result: { content: Array<{ type: string }> }): {
  approvalId: string;
  toolCall: { toolCallId: string; input: unknown };
} {
  const part = result.content.find((p) => p.type === 'tool-approval-request') as
    | { approvalId: string; toolCall: { toolCallId: string; input: unknown } }
    | undefined;
  if (!part) throw new Error(`no tool-approval-request in ${JSON.stringify(result.content.map((p) => p.type))}`);
  return part;
}

/** What the model was shown as tool outputs in a given call. */
function outputsSeen(model: MockLanguageModelV3, call: number): unknown[] {
  const prompt = model.doGenerateCalls[call]?.prompt ?? [];
  return prompt
    .filter((m) => m.role === 'tool')
    .flatMap((m) => m.content)
    .map((p) => (p as { output?: unknown }).output);
}

/** Turn one: the model asks for a refund of `amount`; the SDK stops with an approval request. */
async function askForRefund(amount: number, steps: GenerateResult[]) {
  const rig = await approvalRig();
  const ran: unknown[] = [];
  const model = new MockLanguageModelV3({ doGenerate: [toolCall('call-1', { amount, orderId: 'B7' }), ...steps] });
  const tools = guardTools(refundTools(ran), rig.gate, { principal: agent, sessionId: 's1', onDecision: rig.onDecision });
  const messages: ModelMessage[] = [{ role: 'user', content: 'refund order B7' }];
  const first = await generateText({ model, tools, messages, stopWhen: stepCountIs(3) });
  messages.push(...first.response.messages);
  return { rig, ran, model, tools, messages, first, request: approvalRequestOf(first) };
}

describe('ai-sdk needsApproval + kavachApprovalResponse', () => {
  it('asks the SDK user about a refund over the limit; a grant runs it once with exactly those arguments, its permit carries apr', async () => {
    const { rig, ran, model, tools, messages, first, request } = await askForRefund(900, [text('refunded')]);
    expect(ran).toEqual([]);
    expect(request.toolCall.input).toEqual({ amount: 900, orderId: 'B7' });
    const [pending] = await rig.gate.approvals.list({ status: 'pending' });
    expect(pending).toMatchObject({ action: 'refund', args: { amount: 900, orderId: 'B7' }, reason: 'refunds of 500 or more' });
    expect(first.finishReason).toBe('tool-calls');

    const answer = await kavachApprovalResponse(rig.gate, {
      toolCallId: 'call-1',
      approved: true,
      approver: financeLead,
      note: 'customer verified',
    });
    expect(answer).toMatchObject({ approved: true, request: { id: pending?.id, status: 'granted' } });
    messages.push({
      role: 'tool',
      content: [{ type: 'tool-approval-response', approvalId: request.approvalId, approved: answer.approved }],
    });
    const second = await generateText({ model, tools, messages, stopWhen: stepCountIs(3) });

    expect(ran).toEqual([{ amount: 900, orderId: 'B7' }]);
    expect(second.text).toBe('refunded');
    expect(outputsSeen(model, 1)).toContainEqual({ type: 'json', value: { refunded: 900 } });
    expect((await rig.permitClaims({ amount: 900, orderId: 'B7' })).apr).toBe(pending?.id);
    expect(await rig.finish()).toMatchObject({ approvals: ['requested:pending', 'granted:granted', 'used:used'] });
  });

  it('a deny never runs the tool, and the model reads APPROVAL_DENIED', async () => {
    const { rig, ran, model, tools, messages, request } = await askForRefund(900, [text('not refunded')]);
    const answer = await kavachApprovalResponse(rig.gate, { toolCallId: 'call-1', approved: false, approver: financeLead });
    expect(answer.approved).toBe(false);
    expect(answer.reason).toMatch(/^Refused by policy \[APPROVAL_DENIED\] approval: 'big_refunds_need_a_human'/);
    messages.push({
      role: 'tool',
      content: [{ type: 'tool-approval-response', approvalId: request.approvalId, approved: false, reason: answer.reason }],
    });
    await generateText({ model, tools, messages, stopWhen: stepCountIs(3) });
    expect(ran).toEqual([]);
    expect(outputsSeen(model, 1)).toContainEqual({ type: 'execution-denied', reason: answer.reason });
    expect(await rig.finish()).toMatchObject({ approvals: ['requested:pending', 'denied:denied'] });
  });

  it('a "yes" in the message history alone runs nothing: the model reads APPROVAL_REQUIRED', async () => {
    const { rig, ran, model, tools, messages, request } = await askForRefund(900, [text('still waiting')]);
    messages.push({ role: 'tool', content: [{ type: 'tool-approval-response', approvalId: request.approvalId, approved: true }] });
    await generateText({ model, tools, messages, stopWhen: stepCountIs(3) });
    expect(ran).toEqual([]);
    expect(outputsSeen(model, 1)).toContainEqual({
      type: 'error-text',
      value: expect.stringMatching(/^Refused by policy \[APPROVAL_REQUIRED\]/),
    });
    await rig.finish();
  });

  it('arguments changed after the grant are another call: a new request, and the tool does not run', async () => {
    const { rig, ran, model, tools, messages, request } = await askForRefund(900, [text('hm')]);
    const granted = await kavachApprovalResponse(rig.gate, { toolCallId: 'call-1', approved: true, approver: financeLead });
    // The client edits the tool call in the history it sends back.
    for (const m of messages) {
      if (m.role !== 'assistant' || typeof m.content === 'string') continue;
      for (const part of m.content) if (part.type === 'tool-call') part.input = { amount: 9000, orderId: 'B7' };
    }
    messages.push({ role: 'tool', content: [{ type: 'tool-approval-response', approvalId: request.approvalId, approved: true }] });
    await generateText({ model, tools, messages, stopWhen: stepCountIs(3) });
    expect(ran).toEqual([]);
    const pending = await rig.gate.approvals.list({ status: 'pending' });
    expect(pending).toHaveLength(1);
    expect(pending[0]?.id).not.toBe(granted.request.id);
    expect(pending[0]?.args).toEqual({ amount: 9000, orderId: 'B7' });
    await rig.finish();
  });

  it('a call granted elsewhere (the approvals page) runs without asking the SDK user again', async () => {
    const rig = await approvalRig();
    const ran: unknown[] = [];
    const model = new MockLanguageModelV3({
      doGenerate: [toolCall('call-1', { amount: 700, orderId: 'C1' }), toolCall('call-2', { amount: 700, orderId: 'C1' }), text('done')],
    });
    const tools = guardTools(refundTools(ran), rig.gate, { principal: agent, onDecision: rig.onDecision });
    const first = await generateText({ model, tools, prompt: 'refund C1', stopWhen: stepCountIs(3) });
    approvalRequestOf(first);
    const [pending] = await rig.gate.approvals.list({ status: 'pending' });
    await rig.gate.approvals.decide(pending?.id ?? '', { approver: financeLead, decision: 'grant' });
    // The user asks again in a new turn; the model makes the same call under a new call id.
    const second = await generateText({ model, tools, prompt: 'try again', stopWhen: stepCountIs(3) });
    expect(second.content.some((p) => p.type === 'tool-approval-request')).toBe(false);
    expect(ran).toEqual([{ amount: 700, orderId: 'C1' }]);
    expect(await rig.finish()).toMatchObject({ approvals: ['requested:pending', 'granted:granted', 'used:used'] });
  });

  it('refunds under the limit run straight away, evaluated once for needsApproval and execute together', async () => {
    const rig = await approvalRig();
    const ran: unknown[] = [];
    const model = new MockLanguageModelV3({ doGenerate: [toolCall('call-1', { amount: 40, orderId: 'A1' }), text('done')] });
    await generateText({
      model,
      tools: guardTools(refundTools(ran), rig.gate, { principal: agent, onDecision: rig.onDecision }),
      prompt: 'refund',
      stopWhen: stepCountIs(3),
    });
    expect(ran).toEqual([{ amount: 40, orderId: 'A1' }]);
    expect(rig.decisions).toHaveLength(1);
    await rig.finish();
  });

  it('refuses an approver the policy does not name, and an unknown tool call', async () => {
    const { rig, ran } = await askForRefund(900, []);
    await expect(kavachApprovalResponse(rig.gate, { toolCallId: 'call-1', approved: true, approver: intern })).rejects.toMatchObject({
      code: 'NOT_AN_APPROVER',
    });
    await expect(
      kavachApprovalResponse(rig.gate, { toolCallId: 'call-404', approved: true, approver: financeLead }),
    ).rejects.toBeInstanceOf(ApprovalError);
    expect(await rig.gate.approvals.list({ status: 'pending' })).toHaveLength(1);
    expect(ran).toEqual([]);
    await rig.finish();
  });
});

describe('ai-sdk kavachToolApproval with approvals (ai@7 shape, hand-made events)', () => {
  const event = (toolCallId: string, amount: number, messages: unknown[] = []): ToolApprovalEventLike => ({
    toolCall: { toolName: 'refund', toolCallId, input: { amount, orderId: 'B7' } },
    messages,
  });

  it("answers 'user-approval' with the gate's request, then runs the guarded execute once after the grant", async () => {
    const rig = await approvalRig();
    const ran: unknown[] = [];
    const opts = { principal: agent, onDecision: rig.onDecision };
    const approval = kavachToolApproval(rig.gate, opts);
    const refund = guardTools(refundTools(ran), rig.gate, opts).refund;

    const asked = await approval(event('call-1', 900));
    expect(asked).toMatchObject({
      type: 'user-approval',
      context: { kavach: { approvalId: expect.any(String), reason: expect.stringMatching(/APPROVAL_REQUIRED/) } },
    });
    const id = typeof asked === 'object' && asked.type === 'user-approval' ? asked.context?.kavach.approvalId : undefined;
    await kavachApprovalResponse(rig.gate, { approvalId: id ?? '', approved: true, approver: financeLead });

    // ai@7 asks again before running the approved call; the answer is in the history.
    const history = [
      { role: 'assistant', content: [{ type: 'tool-approval-request', approvalId: 'sdk-1', toolCallId: 'call-1' }] },
      { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: 'sdk-1', approved: true }] },
    ];
    expect(await approval(event('call-1', 900, history))).toEqual({ type: 'user-approval' });
    await refund.execute?.({ amount: 900, orderId: 'B7' }, { toolCallId: 'call-1', messages: [] });
    expect(ran).toEqual([{ amount: 900, orderId: 'B7' }]);
    expect((await rig.permitClaims({ amount: 900, orderId: 'B7' })).apr).toBe(id);
    // The grant is spent: the same call again is asked about afresh.
    expect(await approval(event('call-2', 900))).toMatchObject({
      type: 'user-approval',
      context: { kavach: { approvalId: expect.not.stringMatching(id ?? '') } },
    });
    await rig.finish();
  });

  it('denies with APPROVAL_DENIED once the request was denied', async () => {
    const rig = await approvalRig();
    const approval = kavachToolApproval(rig.gate, { principal: agent });
    await approval(event('call-1', 900));
    await kavachApprovalResponse(rig.gate, { toolCallId: 'call-1', approved: false, approver: financeLead });
    expect(await approval(event('call-1', 900))).toEqual({
      type: 'denied',
      reason: expect.stringMatching(/^Refused by policy \[APPROVAL_DENIED\]/),
    });
    await rig.finish();
  });
});
