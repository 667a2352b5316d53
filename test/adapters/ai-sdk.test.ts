import { asSchema, generateText, stepCountIs, streamText, tool, type ModelMessage, type ToolSet } from 'ai';
import { MockLanguageModelV3, simulateReadableStream } from 'ai/test';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { guardTool, guardTools, kavachToolApproval, ToolCallRefused, type ToolApprovalEventLike } from '../../src/adapters/ai-sdk.ts';
import { formatRefusal } from '../../src/engine/refusal.ts';
import { agent, countingGate, refundGate, throwingGate } from './fixtures.ts';

type LanguageModelV3GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;

const options = (toolCallId: string) => ({ toolCallId, messages: [] as ModelMessage[] });

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};

function toolCallStep(toolCallId: string, toolName: string, input: unknown): LanguageModelV3GenerateResult {
  return {
    content: [{ type: 'tool-call', toolCallId, toolName, input: JSON.stringify(input) }],
    finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
    usage,
    warnings: [],
  };
}

function textStep(text: string): LanguageModelV3GenerateResult {
  return { content: [{ type: 'text', text }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] };
}

function refundTools(ran: number[]) {
  return {
    refund: tool({
      description: 'Refund an order, in dollars.',
      inputSchema: z.object({ amount: z.number().describe('dollars'), orderId: z.string() }),
      execute: async ({ amount }) => {
        ran.push(amount);
        return { refunded: amount };
      },
    }),
  };
}

/** The tool results the model was shown in a given call's prompt. */
function toolOutputsSeen(model: MockLanguageModelV3, call: number): unknown[] {
  const prompt = model.doGenerateCalls[call]?.prompt ?? [];
  return prompt
    .filter((m) => m.role === 'tool')
    .flatMap((m) => m.content)
    .map((p) => (p as { output?: unknown }).output);
}

describe('ai-sdk agent loop with guardTools', () => {
  it('runs the permitted tool, refuses the other without running it, and the model sees the refusal and continues', async () => {
    const ran: number[] = [];
    const model = new MockLanguageModelV3({
      doGenerate: [
        toolCallStep('call-1', 'refund', { amount: 40, orderId: 'A1' }),
        toolCallStep('call-2', 'refund', { amount: 5000, orderId: 'A2' }),
        textStep('One refund done; the other needs a human.'),
      ],
    });
    const result = await generateText({
      model,
      tools: guardTools(refundTools(ran), refundGate(), { principal: agent, sessionId: 's1' }),
      stopWhen: stepCountIs(5),
      prompt: 'refund A1 and A2',
    });

    expect(ran).toEqual([40]);
    const errors = result.steps.flatMap((s) => s.content).filter((p) => p.type === 'tool-error');
    expect(errors).toHaveLength(1);
    const error = errors[0]?.type === 'tool-error' ? errors[0].error : undefined;
    expect(error).toBeInstanceOf(ToolCallRefused);
    const verdict = (error as ToolCallRefused).verdict;
    expect(verdict).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH' });
    expect(model.doGenerateCalls).toHaveLength(3);
    expect(toolOutputsSeen(model, 2)).toContainEqual({ type: 'error-text', value: formatRefusal(verdict) });
    expect(result.text).toBe('One refund done; the other needs a human.');
  });

  it('takes the principal from experimental_context, not from the arguments', async () => {
    const ran: number[] = [];
    const seen: unknown[] = [];
    const model = new MockLanguageModelV3({
      doGenerate: [toolCallStep('c1', 'refund', { amount: 10, orderId: 'A' }), textStep('ok')],
    });
    await generateText({
      model,
      tools: guardTools(refundTools(ran), refundGate(), {
        principal: (run) => {
          seen.push(run.context);
          return { id: (run.context as { user: string }).user, kind: 'user' };
        },
      }),
      experimental_context: { user: 'alice' },
      stopWhen: stepCountIs(3),
      prompt: 'go',
    });
    // Read for the approval check and again for execute; always from the run context.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((c) => JSON.stringify(c) === JSON.stringify({ user: 'alice' }))).toBe(true);
    expect(ran).toEqual([10]);
  });
});

describe('ai-sdk streamText with guardTools', () => {
  type StreamResult = Awaited<ReturnType<MockLanguageModelV3['doStream']>>;
  type Chunk = StreamResult['stream'] extends ReadableStream<infer C> ? C : never;
  const finish = (unified: 'tool-calls' | 'stop'): Chunk => ({ type: 'finish', finishReason: { unified, raw: unified }, usage });
  const stream = (chunks: Chunk[]): StreamResult => ({ stream: simulateReadableStream({ chunks }) });

  it('streams a refusal as a tool-error part and the model continues', async () => {
    const ran: number[] = [];
    const model = new MockLanguageModelV3({
      doStream: [
        stream([
          { type: 'tool-call', toolCallId: 's-1', toolName: 'refund', input: JSON.stringify({ amount: 5000, orderId: 'A' }) },
          finish('tool-calls'),
        ]),
        stream([
          { type: 'text-start', id: 't' },
          { type: 'text-delta', id: 't', delta: 'needs a human' },
          { type: 'text-end', id: 't' },
          finish('stop'),
        ]),
      ],
    });
    const result = streamText({
      model,
      tools: guardTools(refundTools(ran), refundGate(), { principal: agent }),
      stopWhen: stepCountIs(3),
      prompt: 'go',
    });
    const parts: Array<{ type: string; error?: unknown }> = [];
    for await (const part of result.fullStream) parts.push(part);
    expect(ran).toEqual([]);
    const error = parts.find((p) => p.type === 'tool-error')?.error;
    expect(error).toBeInstanceOf(ToolCallRefused);
    expect(await result.text).toBe('needs a human');
    const prompt = model.doStreamCalls[1]?.prompt ?? [];
    const outputs = prompt
      .filter((m) => m.role === 'tool')
      .flatMap((m) => m.content)
      .map((p) => (p as { output?: unknown }).output);
    expect(outputs).toEqual([{ type: 'error-text', value: (error as Error).message }]);
  });
});

describe('ai-sdk guardTool', () => {
  it('keeps description, schema, options and types', async () => {
    const tools = refundTools([]);
    const guarded = guardTools(tools, refundGate(), { principal: agent });
    expect(guarded.refund.description).toBe(tools.refund.description);
    expect(guarded.refund.inputSchema).toBe(tools.refund.inputSchema);
    expect(await asSchema(guarded.refund.inputSchema).jsonSchema).toEqual(await asSchema(tools.refund.inputSchema).jsonSchema);
    expect(guarded.refund.execute).not.toBe(tools.refund.execute);
    expectTypeOf(guarded).toEqualTypeOf(tools);
    expectTypeOf(guardTool(tools.refund, refundGate(), { principal: agent, name: 'refund' })).toEqualTypeOf(tools.refund);
    expectTypeOf(guarded).toExtend<ToolSet>();
  });

  it('charges the same tool-call id once (e.g. checked again after an approval)', async () => {
    const ran: number[] = [];
    const gate = countingGate(refundGate(1));
    const refund = guardTool(refundTools(ran).refund, gate, { principal: agent, name: 'refund' });
    const input = { amount: 10, orderId: 'A' };
    await refund.execute?.(input, options('same'));
    await refund.execute?.(input, options('same'));
    await expect(refund.execute?.(input, options('other'))).rejects.toMatchObject({ verdict: { code: 'RATE_LIMITED' } });
    expect(ran).toEqual([10, 10]);
    expect(gate.calls).toEqual(['same', 'same', 'other']);
  });

  it('refuses when the gate throws, and the tool does not run', async () => {
    const ran: number[] = [];
    const refund = guardTool(refundTools(ran).refund, throwingGate, { principal: agent, name: 'refund' });
    await expect(refund.execute?.({ amount: 1, orderId: 'A' }, options('t'))).rejects.toThrow(/^Refused by policy \[INVALID_CONTEXT\]/);
    expect(ran).toEqual([]);
  });

  it('keeps an async-generator tool streaming', async () => {
    const streaming = tool({
      inputSchema: z.object({ n: z.number() }),
      async *execute({ n }) {
        yield { step: 1 };
        yield { step: n };
      },
    });
    const guarded = guardTool(streaming, refundGate(), { principal: agent, name: 'lookup_order' });
    const out: unknown[] = [];
    for await (const part of (guarded.execute as NonNullable<typeof guarded.execute>)({ n: 2 }, options('g')) as AsyncIterable<unknown>)
      out.push(part);
    expect(out).toEqual([{ step: 1 }, { step: 2 }]);
  });

  it('passes provider-executed tools through unchanged, and says so through onWarning', () => {
    const provider = { type: 'provider', id: 'openai.web_search', args: {}, inputSchema: z.object({}) } as const;
    const warnings: string[] = [];
    expect(
      guardTool(provider as never, refundGate(), { principal: agent, name: 'web_search', onWarning: (m) => void warnings.push(m) }),
    ).toBe(provider);
    expect(warnings).toEqual(["tool 'web_search' has no execute (it runs at the provider or in the client); it passes through ungated"]);
  });

  it('gates a provider-defined tool that runs locally (it has execute: local shell, bash, computer use)', async () => {
    const ran: unknown[] = [];
    // The shape of `openai.tools.localShell({ execute })` / `anthropic.tools.bash_*({ execute })`.
    const shell = {
      type: 'provider',
      id: 'openai.local_shell',
      args: {},
      inputSchema: z.object({ action: z.object({ command: z.array(z.string()) }) }),
      execute: async (input: unknown) => {
        ran.push(input);
        return { output: 'done' };
      },
    } as const;
    const guarded = guardTool(shell as never, refundGate(), { principal: agent, name: 'shell' }) as typeof shell;
    expect(guarded).not.toBe(shell);
    await expect(guarded.execute({ action: { command: ['rm', '-rf', '/'] } })).rejects.toBeInstanceOf(ToolCallRefused);
    expect(ran).toEqual([]);
  });
});

describe('ai-sdk kavachToolApproval (ai@7 toolApproval hook, synthetic events)', () => {
  const event = (toolCallId: string, amount: number, runtimeContext?: unknown): ToolApprovalEventLike => ({
    toolCall: { toolName: 'refund', toolCallId, input: { amount, orderId: 'A' } },
    runtimeContext,
    messages: [],
  });

  it('denies with the refusal text as reason, and is not-applicable on a permit', async () => {
    const approval = kavachToolApproval(refundGate(), { principal: agent });
    expect(await approval(event('a', 10))).toBe('not-applicable');
    const denied = await approval(event('b', 5000));
    expect(denied).toEqual({ type: 'denied', reason: expect.stringMatching(/^Refused by policy \[NO_POLICY_MATCH\]/) });
  });

  it('asks next() after a permit and reads the principal from the runtime context', async () => {
    const approval = kavachToolApproval(refundGate(), {
      principal: (run) => (run.context as { p?: typeof agent } | undefined)?.p,
      next: () => 'user-approval',
    });
    expect(await approval(event('a', 10, { p: agent }))).toBe('user-approval');
    expect(await approval(event('b', 10))).toMatchObject({ type: 'denied', reason: expect.stringContaining('no principal') });
  });

  it('evaluates once across the approval hook and the guarded execute of the same call', async () => {
    const ran: number[] = [];
    const gate = countingGate(refundGate(1));
    const approval = kavachToolApproval(gate, { principal: agent });
    const refund = guardTool(refundTools(ran).refund, gate, { principal: agent, name: 'refund' });
    expect(await approval(event('x', 10))).toBe('not-applicable');
    await refund.execute?.({ amount: 10, orderId: 'A' }, options('x'));
    expect(ran).toEqual([10]);
    expect(gate.calls).toEqual(['x']);
  });

  it('denies when the gate throws', async () => {
    const approval = kavachToolApproval(throwingGate, { principal: agent });
    expect(await approval(event('t', 1))).toMatchObject({ type: 'denied' });
  });
});
