import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { generateText, stepCountIs, tool } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { guardTools } from '../../src/adapters/ai-sdk.ts';
import { Gate } from '../../src/engine/gate.ts';
import { otel } from './otel-helpers.ts';

type GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;
const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };
const toolCall = (id: string, input: unknown): GenerateResult => ({
  content: [{ type: 'tool-call', toolCallId: id, toolName: 'refund', input: JSON.stringify(input) }],
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

// The frameworks make their spans active with context.with: that needs a context manager, as any
// application with the OpenTelemetry Node SDK has.
let manager: AsyncLocalStorageContextManager;
beforeEach(() => {
  manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
});
afterEach(() => {
  context.disable();
});

describe('adapters continue the framework trace', () => {
  it('AI SDK: the gate span is a child of the span the SDK has active when the guard asks, in the same trace', async () => {
    const o = otel();
    const gate = Gate.fromDict(
      {
        policies: [
          { name: 'small-refunds', effect: 'permit', conditions: [{ action: 'refund' }, { param_max: { field: 'amount', max: 100 } }] },
        ],
      },
      { drift: false, telemetry: { tracer: o.tracer, meter: o.meter } },
    );
    const ran: number[] = [];
    const tools = {
      refund: tool({
        description: 'Refund an order',
        inputSchema: z.object({ amount: z.number() }),
        execute: async ({ amount }) => {
          ran.push(amount);
          return { refunded: amount };
        },
      }),
    };
    const model = new MockLanguageModelV3({ doGenerate: [toolCall('c1', { amount: 40 }), toolCall('c2', { amount: 900 }), text('done')] });
    await generateText({
      model,
      tools: guardTools(tools, gate, { principal: { id: 'support-bot', kind: 'agent' } }),
      stopWhen: stepCountIs(4),
      prompt: 'refund twice',
      experimental_telemetry: { isEnabled: true, tracer: o.tracer },
    });
    expect(ran).toEqual([40]);
    const evaluations = o.finished('kavach.evaluate');
    expect(evaluations).toHaveLength(2);
    const all = o.spans.getFinishedSpans();
    const root = o.finished('ai.generateText')[0];
    for (const e of evaluations) {
      // The guard asks the gate from needsApproval (and execute reuses that verdict), which the SDK
      // runs under its ai.generateText span: the gate's span is that span's child, in its trace.
      const parent = all.find((s) => s.spanContext().spanId === e.parentSpanContext?.spanId);
      expect(parent?.name).toBe('ai.generateText');
      expect(e.spanContext().traceId).toBe(root?.spanContext().traceId);
    }
    expect(evaluations.map((e) => e.attributes['kavach.verdict']).sort()).toEqual(['permit', 'refuse']);
    await gate.close();
    await o.close();
  });
});
