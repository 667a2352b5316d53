import { generateText, stepCountIs, tool, type ToolSet } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { guardTool, guardTools, ToolCallRefused } from '../../src/adapters/ai-sdk.ts';
import type { ScreenReport } from '../../src/adapters/screening.ts';
import type { GateEvent } from '../../src/engine/ports.ts';
import { agent, LEAKED_KEY, LEAKY_CONFIG, outcomes, refundGate, screeningGate } from './fixtures.ts';

type GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};

const toolCallStep = (toolCallId: string): GenerateResult => ({
  content: [{ type: 'tool-call', toolCallId, toolName: 'read_config', input: JSON.stringify({ path: '~/.aws/config' }) }],
  finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
  usage,
  warnings: [],
});
const textStep = (text: string): GenerateResult => ({
  content: [{ type: 'text', text }],
  finishReason: { unified: 'stop', raw: 'stop' },
  usage,
  warnings: [],
});

/** Everything the model was shown in its second call (after the tool ran). */
function secondPrompt(model: MockLanguageModelV3): string {
  return JSON.stringify(model.doGenerateCalls[1]?.prompt ?? []);
}

function readConfigTools(result: unknown): ToolSet {
  return {
    read_config: tool({
      description: 'Read the config file.',
      inputSchema: z.object({ path: z.string() }),
      execute: async () => result,
    }),
  };
}

async function run(mode: 'redact' | 'block' | 'report', result: unknown = LEAKY_CONFIG) {
  const events: GateEvent[] = [];
  const reports: ScreenReport[] = [];
  const model = new MockLanguageModelV3({ doGenerate: [toolCallStep('call-1'), textStep('done')] });
  const out = await generateText({
    model,
    tools: guardTools(readConfigTools(result), screeningGate(mode, events), { principal: agent, onScreen: (r) => void reports.push(r) }),
    stopWhen: stepCountIs(3),
    prompt: 'show my aws config',
  });
  const parts = out.steps.flatMap((s) => s.content);
  return { model, parts, events, reports, text: out.text };
}

describe('ai-sdk result screening with guardTools', () => {
  it('redact: the execute result reaches the model with the key replaced; the audit says where, never the key', async () => {
    const { model, parts, events, reports } = await run('redact', { file: LEAKY_CONFIG, size: 61 });
    const result = parts.find((p) => p.type === 'tool-result');
    expect(result?.type === 'tool-result' ? result.output : undefined).toEqual({
      file: '[default]\naws_access_key_id = [REDACTED:aws_access_key]\nregion = eu-west-1',
      size: 61,
    });
    expect(secondPrompt(model)).not.toContain(LEAKED_KEY);
    expect(secondPrompt(model)).toContain('[REDACTED:aws_access_key]');
    expect(outcomes(events)).toEqual([
      expect.objectContaining({
        action: 'read_config',
        outcome: 'ok',
        findings: [{ screen: 'no-secrets', detector: 'aws_access_key', path: '/file', count: 1 }],
      }),
    ]);
    expect(JSON.stringify(events)).not.toContain(LEAKED_KEY);
    expect(reports[0]).toMatchObject({ toolName: 'read_config', callId: 'call-1', findings: [{ path: '/file' }] });
  });

  it('block: the SDK reports a tool error whose text, the OUTPUT_BLOCKED refusal, is what the model reads', async () => {
    const { model, parts, events, text } = await run('block');
    const error = parts.find((p) => p.type === 'tool-error');
    const thrown = error?.type === 'tool-error' ? error.error : undefined;
    expect(thrown).toBeInstanceOf(ToolCallRefused);
    expect((thrown as ToolCallRefused).verdict).toMatchObject({ kind: 'refuse', code: 'OUTPUT_BLOCKED', evaluator: 'screen' });
    expect((thrown as ToolCallRefused).message).toBe(
      "Refused by policy [OUTPUT_BLOCKED] screen: the tool's result was withheld: it contained an AWS access key ID (screen 'no-secrets').",
    );
    expect(secondPrompt(model)).toContain('[OUTPUT_BLOCKED]');
    expect(secondPrompt(model)).not.toContain(LEAKED_KEY);
    expect(text).toBe('done');
    expect(outcomes(events)[0]).toMatchObject({ withheld: true });
  });

  it('report: the result is unchanged and the finding recorded', async () => {
    const { model, events } = await run('report');
    expect(secondPrompt(model)).toContain(LEAKED_KEY);
    expect(outcomes(events)[0]?.findings?.[0]).toMatchObject({ detector: 'aws_access_key', count: 1 });
  });

  it('a clean result is the very same value, with nothing recorded', async () => {
    const result = { region: 'eu-west-1' };
    const events: GateEvent[] = [];
    const readConfig = tool({ description: 'Read.', inputSchema: z.object({ path: z.string() }), execute: async () => result });
    const guarded = guardTool(readConfig, screeningGate('block', events), { principal: agent, name: 'read_config' });
    const out = await guarded.execute?.({ path: 'x' }, { toolCallId: 'c', messages: [] });
    expect(out).toBe(result);
    expect(outcomes(events)).toEqual([]);
  });

  it('screens every value a streaming tool yields, and stops the stream at a withheld one', async () => {
    const streaming = tool({
      description: 'Tail the config.',
      inputSchema: z.object({ path: z.string() }),
      async *execute() {
        yield { status: 'reading' };
        yield { status: 'read', text: LEAKY_CONFIG };
        yield { status: 'never reached' };
      },
    });
    const redacting = guardTool(streaming, screeningGate('redact'), { principal: agent, name: 'read_config' });
    const seen: unknown[] = [];
    for await (const chunk of (redacting.execute as NonNullable<typeof redacting.execute>)(
      { path: 'x' },
      { toolCallId: 'c1', messages: [] },
    ) as AsyncIterable<unknown>)
      seen.push(chunk);
    expect(JSON.stringify(seen)).not.toContain(LEAKED_KEY);
    expect(seen).toHaveLength(3);

    const blocking = guardTool(streaming, screeningGate('block'), { principal: agent, name: 'read_config' });
    const before: unknown[] = [];
    const consume = async () => {
      for await (const chunk of (blocking.execute as NonNullable<typeof blocking.execute>)(
        { path: 'x' },
        { toolCallId: 'c2', messages: [] },
      ) as AsyncIterable<unknown>)
        before.push(chunk);
    };
    await expect(consume()).rejects.toBeInstanceOf(ToolCallRefused);
    expect(before).toEqual([{ status: 'reading' }]);
  });

  it('a gate without [[screen]] hands the result back untouched', async () => {
    const result = { key: LEAKED_KEY };
    const lookup = tool({ description: 'Look up.', inputSchema: z.object({ id: z.string() }), execute: async () => result });
    const guarded = guardTool(lookup, refundGate(), { principal: agent, name: 'lookup_order' });
    expect(await guarded.execute?.({ id: 'A1' }, { toolCallId: 'c', messages: [] })).toBe(result);
  });

  it("screens a thrown error's message: the model reads it redacted, or the OUTPUT_BLOCKED refusal", async () => {
    const failing = tool({
      description: 'Read the config file.',
      inputSchema: z.object({ path: z.string() }),
      execute: async (): Promise<string> => {
        throw new TypeError(`no profile for ${LEAKED_KEY}`);
      },
    });
    const events: GateEvent[] = [];
    const redacting = guardTool(failing, screeningGate('redact', events), { principal: agent, name: 'read_config' });
    const err = await Promise.resolve(redacting.execute?.({ path: 'x' }, { toolCallId: 'e1', messages: [] }) as Promise<string>).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.name).toBe('TypeError');
    expect(err?.message).toBe('no profile for [REDACTED:aws_access_key]');
    expect(JSON.stringify({ m: err?.message, s: err?.stack })).not.toContain(LEAKED_KEY);
    expect(outcomes(events)[0]).toMatchObject({ outcome: 'tool_error', findings: [{ path: '/message' }] });

    const blocking = guardTool(failing, screeningGate('block'), { principal: agent, name: 'read_config' });
    await expect(blocking.execute?.({ path: 'x' }, { toolCallId: 'e2', messages: [] })).rejects.toBeInstanceOf(ToolCallRefused);
  });
});
