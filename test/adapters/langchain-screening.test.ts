import { AIMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { tool } from '@langchain/core/tools';
import { createAgent } from 'langchain';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { guardTool, guardTools, kavachMiddleware } from '../../src/adapters/langchain.ts';
import type { ScreenReport } from '../../src/adapters/screening.ts';
import type { GateEvent } from '../../src/engine/ports.ts';
import { agent, LEAKED_KEY, LEAKY_CONFIG, outcomes, refundGate, screeningGate } from './fixtures.ts';

function readConfig(result: unknown = LEAKY_CONFIG) {
  return tool(async () => result, {
    name: 'read_config',
    description: 'Read the config file.',
    schema: z.object({ path: z.string() }),
  });
}

function toolMessages(messages: BaseMessage[]): ToolMessage[] {
  return messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m));
}

function scriptedModel() {
  return fakeModel()
    .respondWithTools([{ name: 'read_config', args: { path: '~/.aws/config' }, id: 'call-1' }])
    .respond(new AIMessage('Read it.'));
}

async function runAgent(style: 'tool' | 'middleware', mode: 'redact' | 'block' | 'report', result: unknown = LEAKY_CONFIG) {
  const events: GateEvent[] = [];
  const reports: ScreenReport[] = [];
  const gate = screeningGate(mode, events);
  const model = scriptedModel();
  const opts = { principal: agent, onScreen: (r: ScreenReport) => void reports.push(r) };
  const graph =
    style === 'tool'
      ? createAgent({ model, tools: guardTools([readConfig(result)], gate, opts) })
      : createAgent({ model, tools: [readConfig(result)], middleware: [kavachMiddleware(gate, opts)] });
  const out = await graph.invoke({ messages: [{ role: 'user', content: 'show my aws config' }] });
  // What the model was given on its second turn: the only thing that matters for a leak.
  const seen = toolMessages(model.calls[1]?.messages ?? []);
  return { message: toolMessages(out.messages)[0], seen, events, reports };
}

describe.each([
  ['guardTools', 'tool'],
  ['kavachMiddleware', 'middleware'],
] as const)('langchain result screening with %s', (_name, style) => {
  it('redact: the model reads the result with the key replaced, and the audit says where (never the key)', async () => {
    const { message, seen, events, reports } = await runAgent(style, 'redact');
    expect(message?.status).not.toBe('error');
    expect(message?.content).toBe('[default]\naws_access_key_id = [REDACTED:aws_access_key]\nregion = eu-west-1');
    expect(JSON.stringify(seen)).not.toContain(LEAKED_KEY);
    expect(seen[0]?.content).toBe(message?.content);
    const [outcome] = outcomes(events);
    expect(outcome).toMatchObject({
      action: 'read_config',
      outcome: 'ok',
      findings: [{ screen: 'no-secrets', detector: 'aws_access_key', path: expect.any(String), count: 1 }],
    });
    expect(outcome?.withheld).toBeUndefined();
    // The outcome belongs to the evaluation that permitted the call.
    const permit = events.find((e) => e.type === 'verdict');
    expect(outcome?.evaluationId).toBe(permit?.type === 'verdict' ? permit.evaluationId : 'none');
    expect(JSON.stringify(events)).not.toContain(LEAKED_KEY);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ toolName: 'read_config', callId: 'call-1' });
  });

  it('block: the model gets an OUTPUT_BLOCKED refusal naming what kind of thing was withheld, and goes on', async () => {
    const { message, seen, events } = await runAgent(style, 'block');
    expect(message?.status).toBe('error');
    expect(message?.tool_call_id).toBe('call-1');
    expect(message?.content).toBe(
      "Refused by policy [OUTPUT_BLOCKED] screen: the tool's result was withheld: it contained an AWS access key ID (screen 'no-secrets').",
    );
    expect(message?.artifact).toMatchObject({ kind: 'refuse', code: 'OUTPUT_BLOCKED', evaluator: 'screen' });
    expect(JSON.stringify(seen)).not.toContain(LEAKED_KEY);
    expect(seen[0]?.content).toBe(message?.content);
    expect(outcomes(events)[0]).toMatchObject({ withheld: true, findings: [{ detector: 'aws_access_key', count: 1 }] });
  });

  it('report: the result reaches the model unchanged and the finding is recorded', async () => {
    const { message, events, reports } = await runAgent(style, 'report');
    expect(message?.content).toBe(LEAKY_CONFIG);
    expect(outcomes(events)[0]?.findings).toEqual([
      { screen: 'no-secrets', detector: 'aws_access_key', path: expect.any(String), count: 1 },
    ]);
    expect(reports[0]?.withheld).toBeUndefined();
  });

  it('records nothing and changes nothing when the result holds no secret', async () => {
    const { message, events, reports } = await runAgent(style, 'block', 'region = eu-west-1');
    expect(message?.content).toBe('region = eu-west-1');
    expect(outcomes(events)).toEqual([]);
    expect(reports).toEqual([]);
  });

  it('screens a structured result as JSON: the key inside an object is redacted', async () => {
    const { message } = await runAgent(style, 'redact', { profile: 'default', key: LEAKED_KEY });
    expect(String(message?.content)).not.toContain(LEAKED_KEY);
    expect(String(message?.content)).toContain('[REDACTED:aws_access_key]');
  });
});

describe('langchain result screening, direct calls', () => {
  it('guardTool screens a content_and_artifact pair: the artifact is redacted too', async () => {
    const pair = tool(async () => [LEAKY_CONFIG, { raw: LEAKY_CONFIG }], {
      name: 'read_config',
      description: 'Read the config file.',
      schema: z.object({ path: z.string() }),
      responseFormat: 'content_and_artifact',
    });
    const guarded = guardTool(pair, screeningGate('redact'), { principal: agent });
    const message = (await guarded.invoke({
      id: 'call-9',
      name: 'read_config',
      args: { path: 'x' },
      type: 'tool_call',
    })) as ToolMessage;
    expect(JSON.stringify(message.toJSON())).not.toContain(LEAKED_KEY);
    expect(message.artifact).toEqual({ raw: '[default]\naws_access_key_id = [REDACTED:aws_access_key]\nregion = eu-west-1' });
  });

  it('guardTool invoked with plain arguments returns the refusal text for a withheld result', async () => {
    const guarded = guardTool(readConfig(), screeningGate('block'), { principal: agent });
    const out = await guarded.invoke({ path: 'x' });
    expect(out).toMatch(/^Refused by policy \[OUTPUT_BLOCKED\] screen: /);
  });

  it('a gate without [[screen]] leaves results alone (the same object comes back)', async () => {
    const result = { key: LEAKED_KEY };
    const lookup = tool(async () => result, { name: 'lookup_order', description: 'Look up.', schema: z.object({ id: z.string() }) });
    const guarded = guardTool(lookup, refundGate(), { principal: agent });
    expect(await guarded.invoke({ id: 'A1' })).toBe(result);
  });

  it("guardTool screens a thrown error's message (the agent shows it to the model)", async () => {
    const failing = tool(
      async (): Promise<string> => {
        throw new Error(`no profile for ${LEAKED_KEY}`);
      },
      { name: 'read_config', description: 'Read.', schema: z.object({ path: z.string() }) },
    );
    const guarded = guardTool(failing, screeningGate('redact'), { principal: agent });
    await expect(guarded.invoke({ path: 'x' })).rejects.toThrow('no profile for [REDACTED:aws_access_key]');
  });

  it('kavachMiddleware screens the error a tool throws before the agent shows it to the model', async () => {
    const failing = tool(
      async (): Promise<string> => {
        throw new Error(`no profile for ${LEAKED_KEY}`);
      },
      { name: 'read_config', description: 'Read.', schema: z.object({ path: z.string() }) },
    );
    const model = scriptedModel();
    const graph = createAgent({ model, tools: [failing], middleware: [kavachMiddleware(screeningGate('redact'), { principal: agent })] });
    // The agent hands a tool's error to the model (or, without error handling, to the caller): either way, redacted.
    const out = await graph.invoke({ messages: [{ role: 'user', content: 'show my aws config' }] }).catch((err: Error) => err);
    const seen = out instanceof Error ? out.message : JSON.stringify(toolMessages(model.calls[1]?.messages ?? []));
    expect(seen).toContain('no profile for [REDACTED:aws_access_key]');
    expect(seen).not.toContain(LEAKED_KEY);
  });
});
