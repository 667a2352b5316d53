import type { ChatCompletionMessageToolCall } from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import { gateToolCalls } from '../../src/adapters/openai.ts';
import { agent } from './fixtures.ts';
import { approvalRig, financeLead } from './approval-fixtures.ts';

const call = (id: string, amount: number): ChatCompletionMessageToolCall => ({
  id,
  type: 'function',
  function: { name: 'refund', arguments: JSON.stringify({ amount, orderId: 'B7' }) },
});

describe('openai gateToolCalls with approvals (no seam in the SDK: the model is told)', () => {
  it('answers APPROVAL_REQUIRED with how it will be decided; once granted the same call runs once, other arguments ask again', async () => {
    const rig = await approvalRig();
    const ran: unknown[] = [];
    const handlers = {
      refund: (args: Record<string, unknown>) => {
        ran.push(args);
        return 'refunded';
      },
    };
    const opts = { principal: agent, onDecision: rig.onDecision };

    const [asked] = await gateToolCalls([call('c1', 900)], handlers, rig.gate, opts);
    const [pending] = await rig.gate.approvals.list({ status: 'pending' });
    expect(asked?.content).toMatch(/^Refused by policy \[APPROVAL_REQUIRED\] approval: 'big_refunds_need_a_human'/);
    expect(asked?.content).toContain(`A person decides request ${pending?.id} (until `);
    expect(asked?.content).toContain('once it is granted, this exact call (same arguments) will run when made again');
    expect(ran).toEqual([]);

    await rig.gate.approvals.decide(pending?.id ?? '', { approver: financeLead, decision: 'grant' });
    const outputs = await gateToolCalls([call('c2', 900), call('c3', 900), call('c4', 950)], handlers, rig.gate, opts);
    expect(ran).toEqual([{ amount: 900, orderId: 'B7' }]);
    expect(outputs.map((o) => String(o.content).slice(0, 40))).toEqual([
      'refunded',
      expect.stringMatching(/^Refused by policy \[APPROVAL_REQUIRED\]/),
      expect.stringMatching(/^Refused by policy \[APPROVAL_REQUIRED\]/),
    ]);
    expect((await rig.permitClaims({ amount: 900, orderId: 'B7' })).apr).toBe(pending?.id);
    // The grant is spent: 900 asks again (a new request), and 950 has its own.
    const asking = (await rig.gate.approvals.list({ status: 'pending' })).map((r) => (r.args as { amount: number }).amount).sort();
    expect(asking).toEqual([900, 950]);
    await rig.finish();
  });

  it('a denied request is APPROVAL_DENIED, and the tool never runs', async () => {
    const rig = await approvalRig();
    const ran: unknown[] = [];
    const handlers = {
      refund: (args: Record<string, unknown>) => {
        ran.push(args);
        return 'refunded';
      },
    };
    await gateToolCalls([call('c1', 900)], handlers, rig.gate, { principal: agent });
    const [pending] = await rig.gate.approvals.list({ status: 'pending' });
    await rig.gate.approvals.decide(pending?.id ?? '', { approver: financeLead, decision: 'deny' });
    const [denied] = await gateToolCalls([call('c2', 900)], handlers, rig.gate, { principal: agent });
    expect(denied?.content).toMatch(/^Refused by policy \[APPROVAL_DENIED\]/);
    expect(ran).toEqual([]);
    expect(await rig.finish()).toMatchObject({ approvals: ['requested:pending', 'denied:denied'] });
  });
});
