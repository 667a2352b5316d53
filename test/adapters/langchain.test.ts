import { AIMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { DynamicStructuredTool, DynamicTool, StructuredTool, tool } from '@langchain/core/tools';
import { convertToOpenAITool } from '@langchain/core/utils/function_calling';
import { createAgent } from 'langchain';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { guardTool, guardTools, kavachMiddleware } from '../../src/adapters/langchain.ts';
import { Gate } from '../../src/engine/gate.ts';
import { formatRefusal } from '../../src/engine/refusal.ts';
import { agent, countingGate, refundGate, throwingGate } from './fixtures.ts';

function refundTool(ran: number[]) {
  return tool(
    async ({ amount }: { amount: number; orderId: string }) => {
      ran.push(amount);
      return `refunded ${amount}`;
    },
    {
      name: 'refund',
      description: 'Refund an order, in dollars.',
      schema: z.object({ amount: z.number().describe('dollars'), orderId: z.string() }),
    },
  );
}

function toolMessages(messages: BaseMessage[]): ToolMessage[] {
  return messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m));
}

/** Model script: a permitted refund, one over the limit, then a closing answer. */
function scriptedModel() {
  return fakeModel()
    .respondWithTools([{ name: 'refund', args: { amount: 40, orderId: 'A1' }, id: 'call-1' }])
    .respondWithTools([{ name: 'refund', args: { amount: 5000, orderId: 'A2' }, id: 'call-2' }])
    .respond(new AIMessage('One refund done; the other needs a human.'));
}

describe.each([
  ['guardTools', 'tool'],
  ['kavachMiddleware', 'middleware'],
] as const)('langchain agent loop with %s', (_name, style) => {
  it('runs the permitted tool, refuses the other without running it, and the model sees the refusal and continues', async () => {
    const ran: number[] = [];
    const gate = refundGate();
    const model = scriptedModel();
    const opts = { principal: agent, sessionId: 's1' };
    const agentGraph =
      style === 'tool'
        ? createAgent({ model, tools: guardTools([refundTool(ran)], gate, opts) })
        : createAgent({ model, tools: [refundTool(ran)], middleware: [kavachMiddleware(gate, opts)] });

    const result = await agentGraph.invoke({ messages: [{ role: 'user', content: 'refund A1 and A2' }] });

    expect(ran).toEqual([40]);
    const [first, second] = toolMessages(result.messages);
    expect(first?.status).not.toBe('error');
    expect(first?.content).toBe('refunded 40');
    expect(second?.status).toBe('error');
    expect(second?.tool_call_id).toBe('call-2');
    expect(second?.artifact).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH' });
    expect(second?.content).toBe(formatRefusal(second?.artifact));
    // The model was called a third time, with the refusal in its input, and answered.
    expect(model.callCount).toBe(3);
    const seen = toolMessages(model.calls[2]?.messages ?? []);
    expect(seen.map((m) => m.content)).toContain(second?.content);
    expect(result.messages.at(-1)?.content).toBe('One refund done; the other needs a human.');
  });
});

describe('langchain guardTool', () => {
  it('keeps name, description, JSON schema and type of the tool', () => {
    const original = refundTool([]);
    const guarded = guardTool(original, refundGate(), { principal: agent });
    expect(guarded.name).toBe(original.name);
    expect(guarded.description).toBe(original.description);
    expect(guarded.schema).toBe(original.schema);
    expect(convertToOpenAITool(guarded)).toEqual(convertToOpenAITool(original));
    expect(guarded).toBeInstanceOf(DynamicStructuredTool);
    expect(guarded).not.toBe(original);
    expectTypeOf(guarded).toEqualTypeOf(original);
    const [a, b] = guardTools([original, refundTool([])] as const, refundGate(), { principal: agent });
    expectTypeOf(a).toEqualTypeOf(original);
    expectTypeOf(b).toEqualTypeOf(original);
  });

  it('leaves the original tool ungated', async () => {
    const ran: number[] = [];
    const original = refundTool(ran);
    guardTool(original, throwingGate, { principal: agent });
    await original.invoke({ amount: 1, orderId: 'x' });
    expect(ran).toEqual([1]);
  });

  it('charges the same tool-call id once, even when gated twice (tool + middleware) or replayed', async () => {
    const ran: number[] = [];
    const gate = countingGate(refundGate(1));
    const guarded = guardTool(refundTool(ran), gate, { principal: agent });
    const call = { type: 'tool_call' as const, id: 'same-id', name: 'refund', args: { amount: 10, orderId: 'A' } };
    const first = await guarded.invoke(call);
    const replay = await guarded.invoke(call);
    const other = await guarded.invoke({ ...call, id: 'other-id' });
    expect(ran).toEqual([10, 10]);
    expect(first).toMatchObject({ status: 'success' });
    expect(replay).toMatchObject({ status: 'success' });
    expect(other).toMatchObject({ status: 'error', artifact: { code: 'RATE_LIMITED' } });
    expect(gate.calls).toEqual(['same-id', 'same-id', 'other-id']);
  });

  it('charges once when both the middleware and the guarded tool check the same call', async () => {
    const ran: number[] = [];
    const gate = countingGate(refundGate(1));
    const opts = { principal: agent };
    const model = fakeModel()
      .respondWithTools([{ name: 'refund', args: { amount: 10, orderId: 'A' }, id: 'dup-1' }])
      .respond(new AIMessage('done'));
    const graph = createAgent({ model, tools: [guardTool(refundTool(ran), gate, opts)], middleware: [kavachMiddleware(gate, opts)] });
    await graph.invoke({ messages: [{ role: 'user', content: 'go' }] });
    expect(gate.calls).toEqual(['dup-1', 'dup-1']);
    expect(ran).toEqual([10]);
  });

  describe('middleware gates the arguments the tool will receive (after its schema coerces and fills defaults)', () => {
    const lenientRefund = (ran: number[]) =>
      tool(
        async ({ amount }: { amount: number; orderId: string; currency: string }) => {
          ran.push(amount);
          return `refunded ${amount}`;
        },
        {
          name: 'refund',
          description: 'Refund an order, in dollars.',
          schema: z.object({ amount: z.coerce.number(), orderId: z.string(), currency: z.string().default('usd') }),
        },
      );
    const gate = () =>
      countingGate(
        Gate.fromDict(
          {
            policy: [
              {
                name: 'no-big-refunds',
                effect: 'refuse',
                conditions: [{ action: 'refund' }, { param_min: { field: 'amount', min: 1000 } }],
              },
              { name: 'refunds', effect: 'permit', conditions: [{ action: 'refund' }, { rate_limit: { max: 1, window: '1h' } }] },
            ],
          },
          { drift: false },
        ),
      );
    const model = () =>
      fakeModel()
        // A number sent as a string: as raw arguments it fails the refuse policy's numeric test.
        .respondWithTools([{ name: 'refund', args: { amount: '5000', orderId: 'A' }, id: 'big' }])
        .respondWithTools([{ name: 'refund', args: { amount: 10, orderId: 'B' }, id: 'small' }])
        .respond(new AIMessage('done'));
    const opts = { principal: agent };

    it('a coerced value cannot slip past a refuse policy', async () => {
      const ran: number[] = [];
      const graph = createAgent({ model: model(), tools: [lenientRefund(ran)], middleware: [kavachMiddleware(gate(), opts)] });
      const result = await graph.invoke({ messages: [{ role: 'user', content: 'go' }] });
      expect(ran).toEqual([10]);
      expect(toolMessages(result.messages)[0]?.artifact).toMatchObject({ code: 'POLICY_DENIED' });
    });

    it('paired with the guarded tool, both checks see the same arguments and charge once', async () => {
      const ran: number[] = [];
      const g = gate();
      const graph = createAgent({
        model: model(),
        tools: [guardTool(lenientRefund(ran), g, opts)],
        middleware: [kavachMiddleware(g, opts)],
      });
      const result = await graph.invoke({ messages: [{ role: 'user', content: 'go' }] });
      expect(ran).toEqual([10]);
      expect(toolMessages(result.messages).map((m) => m.status)).toEqual(['error', 'success']);
    });
  });

  it('refuses when the gate throws, and the tool does not run', async () => {
    const ran: number[] = [];
    const guarded = guardTool(refundTool(ran), throwingGate, { principal: agent });
    const out = await guarded.invoke({ type: 'tool_call', id: 't1', name: 'refund', args: { amount: 1, orderId: 'A' } });
    expect(ran).toEqual([]);
    expect(out).toBeInstanceOf(ToolMessage);
    expect(out).toMatchObject({ status: 'error', artifact: { kind: 'refuse', code: 'INVALID_CONTEXT' } });
  });

  it('refuses when no principal can be resolved from the run context', async () => {
    const ran: number[] = [];
    const guarded = guardTool(refundTool(ran), refundGate(), { principal: () => undefined });
    const out = await guarded.invoke({ amount: 1, orderId: 'A' });
    expect(ran).toEqual([]);
    expect(out).toMatch(/^Refused by policy \[INVALID_CONTEXT\] adapter: no principal/);
  });

  it('takes the principal from the agent runtime context, not from the arguments', async () => {
    const ran: number[] = [];
    const seen: unknown[] = [];
    const model = fakeModel()
      .respondWithTools([{ name: 'refund', args: { amount: 10, orderId: 'A', principal: 'admin' }, id: 'c1' }])
      .respond(new AIMessage('done'));
    const graph = createAgent({
      model,
      tools: [refundTool(ran)],
      contextSchema: z.object({ userId: z.string() }),
      middleware: [
        kavachMiddleware(refundGate(), {
          principal: (run) => {
            seen.push(run.context);
            return { id: (run.context as { userId: string }).userId, kind: 'user' };
          },
        }),
      ],
    });
    await graph.invoke({ messages: [{ role: 'user', content: 'go' }] }, { context: { userId: 'alice' } });
    expect(seen).toEqual([{ userId: 'alice' }]);
    expect(ran).toEqual([10]);
  });

  it('observe mode reports the refusal but lets the tool run', async () => {
    const ran: number[] = [];
    const decisions: unknown[] = [];
    const guarded = guardTool(refundTool(ran), refundGate(), {
      principal: agent,
      mode: 'observe',
      onDecision: (d) => void decisions.push(d),
    });
    await guarded.invoke({ amount: 5000, orderId: 'A' });
    expect(ran).toEqual([5000]);
    expect(decisions).toMatchObject([{ allowed: true, mode: 'observe', verdict: { kind: 'refuse', code: 'NO_POLICY_MATCH' } }]);
  });
});

describe('langchain guardTool on other tool kinds', () => {
  class LookupTool extends StructuredTool {
    name = 'lookup_order';
    description = 'Look up an order.';
    schema = z.object({ orderId: z.string() });
    ran: string[] = [];
    protected async _call({ orderId }: { orderId: string }): Promise<string> {
      this.ran.push(orderId);
      return `order ${orderId}`;
    }
  }

  it('guards a StructuredTool subclass, keeping its class and fields', async () => {
    const original = new LookupTool();
    const guarded = guardTool(original, refundGate(), { principal: agent });
    expect(guarded).toBeInstanceOf(LookupTool);
    expectTypeOf(guarded).toEqualTypeOf<LookupTool>();
    expect(await guarded.invoke({ orderId: 'A' })).toBe('order A');
    const denied = guardTool(original, refundGate(), { principal: agent, actionName: 'refund' });
    expect(await denied.invoke({ orderId: 'B' })).toMatch(/^Refused by policy \[NO_POLICY_MATCH\]/);
    expect(original.ran).toEqual(['A']);
  });

  it('keeps a content_and_artifact tool working and refuses it as an error ToolMessage', async () => {
    const original = tool(async ({ amount }: { amount: number }) => [`refunded ${amount}`, { amount }], {
      name: 'refund',
      description: 'Refund.',
      schema: z.object({ amount: z.number() }),
      responseFormat: 'content_and_artifact',
    });
    const guarded = guardTool(original, refundGate(), { principal: agent });
    const ok = await guarded.invoke({ type: 'tool_call', id: 'ok', name: 'refund', args: { amount: 5 } });
    expect(ok).toMatchObject({ content: 'refunded 5', artifact: { amount: 5 } });
    const no = await guarded.invoke({ type: 'tool_call', id: 'no', name: 'refund', args: { amount: 5000 } });
    expect(no).toMatchObject({ status: 'error', tool_call_id: 'no', artifact: { kind: 'refuse' } });
    expect(await guarded.invoke({ amount: 5000 })).toMatch(/^Refused by policy \[NO_POLICY_MATCH\]/);
  });

  it('guards a string-input DynamicTool', async () => {
    const ran: string[] = [];
    const original = new DynamicTool({
      name: 'lookup_order',
      description: 'Look up.',
      func: async (input: string) => (ran.push(input), `order ${input}`),
    });
    const guarded = guardTool(original, refundGate(), { principal: agent });
    expect(await guarded.invoke('A-1')).toBe('order A-1');
    expect(ran).toEqual(['A-1']);
    expectTypeOf(guarded).toEqualTypeOf(original);
  });
});
