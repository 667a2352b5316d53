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
  RunContext,
  type StreamEvent,
} from '@openai/agents';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  guardTool,
  guardTools,
  kavachInputGuardrail,
  kavachOutputGuardrail,
  type KavachGuardrailInfo,
  type KavachOutputGuardrailInfo,
} from '../../src/adapters/openai-agents.ts';
import { Gate } from '../../src/engine/gate.ts';
import type { GateEvent } from '../../src/engine/ports.ts';
import {
  agent as principal,
  countingGate,
  LEAKED_KEY,
  LEAKY_CONFIG,
  outcomes,
  refundGate,
  screeningGate,
  throwingGate,
} from './fixtures.ts';

type Step = { call: { id: string; name: string; args: unknown } } | { text: string };

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
        : [
            {
              type: 'function_call',
              callId: step.call.id,
              name: step.call.name,
              arguments: JSON.stringify(step.call.args),
              status: 'completed',
            },
          ];
    return { usage: new Usage(), output };
  }
  // biome-ignore lint/correctness/useYield: a fake model that never streams
  async *getStreamedResponse(): AsyncIterable<StreamEvent> {
    throw new Error('not scripted');
  }
}

function refundTool(ran: number[]) {
  return tool({
    name: 'refund',
    description: 'Refund an order, in dollars.',
    parameters: z.object({ amount: z.number(), orderId: z.string() }),
    execute: async ({ amount }) => {
      ran.push(amount);
      return `refunded ${amount}`;
    },
  });
}

function resultsSeen(input: ModelRequest['input'] | undefined): Array<{ callId: string; output: unknown }> {
  if (!Array.isArray(input)) return [];
  return (input as AgentInputItem[])
    .filter((i): i is Extract<AgentInputItem, { type: 'function_call_result' }> => i.type === 'function_call_result')
    .map((i) => ({ callId: i.callId, output: i.output }));
}

function textOf(output: unknown): string {
  if (typeof output === 'string') return output;
  return (output as { text?: string }).text ?? JSON.stringify(output);
}

const runner = new Runner({ tracingDisabled: true });

describe('openai agents loop with guardTool', () => {
  it('runs the permitted tool, refuses the other without running it, and the model sees the refusal and continues', async () => {
    const ran: number[] = [];
    const model = new ScriptedModel([
      { call: { id: 'call-1', name: 'refund', args: { amount: 40, orderId: 'A1' } } },
      { call: { id: 'call-2', name: 'refund', args: { amount: 5000, orderId: 'A2' } } },
      { text: 'One refund done; the other needs a human.' },
    ]);
    const bot = new Agent({ name: 'finance', model, tools: [guardTool(refundTool(ran), refundGate(), { principal })] });
    const result = await runner.run(bot, 'refund A1 and A2');
    expect(result.finalOutput).toBe('One refund done; the other needs a human.');
    expect(ran).toEqual([40]);
    const seen = resultsSeen(model.inputs[2]);
    expect(seen.map((s) => s.callId)).toEqual(['call-1', 'call-2']);
    expect(textOf(seen[0]?.output)).toBe('refunded 40');
    expect(textOf(seen[1]?.output)).toMatch(/^Refused by policy \[NO_POLICY_MATCH\] policy: /);
    const info = result.toolInputGuardrailResults.map((r) => (r.output.outputInfo as KavachGuardrailInfo).kavach.verdict.kind);
    expect(info).toEqual(['permit', 'refuse']);
  });

  it('takes the principal from the run context, not from the arguments', async () => {
    const ran: number[] = [];
    const model = new ScriptedModel([
      { call: { id: 'c', name: 'refund', args: { amount: 5, orderId: 'A', user: 'root' } } },
      { text: 'ok' },
    ]);
    const seen: unknown[] = [];
    const guarded = guardTool(refundTool(ran), refundGate(), {
      principal: (run) => {
        seen.push(run.context);
        return (run.context as { who?: typeof principal }).who;
      },
    });
    await runner.run(new Agent({ name: 'finance', model, tools: [guarded] }), 'go', { context: { who: principal } });
    // Read by needsApproval and by the guardrail; always from the run context.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((c) => JSON.stringify(c) === JSON.stringify({ who: principal }))).toBe(true);
    expect(ran).toEqual([5]);
  });

  it('refuses when the gate throws, and the tool does not run', async () => {
    const ran: number[] = [];
    const model = new ScriptedModel([{ call: { id: 't', name: 'refund', args: { amount: 1, orderId: 'A' } } }, { text: 'ok' }]);
    await runner.run(new Agent({ name: 'finance', model, tools: [guardTool(refundTool(ran), throwingGate, { principal })] }), 'go');
    expect(ran).toEqual([]);
    expect(textOf(resultsSeen(model.inputs[1])[0]?.output)).toMatch(/^Refused by policy \[INVALID_CONTEXT\]/);
  });
});

describe('openai agents guardTool', () => {
  it('keeps name, description, JSON schema and type, appends the guardrail, and its invoke runs the original', async () => {
    const ran: number[] = [];
    const original = refundTool(ran);
    const guarded = guardTool(original, refundGate(), { principal });
    expect(guarded).not.toBe(original);
    expect(guarded.name).toBe(original.name);
    expect(guarded.description).toBe(original.description);
    expect(guarded.parameters).toEqual(original.parameters);
    expect(guarded.strict).toBe(original.strict);
    // invoke is wrapped (its result is screened) and runs the original tool.
    expect(await guarded.invoke(new RunContext({}), '{"amount":7,"orderId":"A"}')).toBe('refunded 7');
    expect(ran).toEqual([7]);
    expect(original.inputGuardrails ?? []).toHaveLength(0);
    expect(guarded.inputGuardrails?.map((g) => g.name)).toEqual(['kavach']);
    expectTypeOf(guarded).toEqualTypeOf(original);
    const [g] = guardTools([original] as const, refundGate(), { principal });
    expectTypeOf(g).toEqualTypeOf(original);
  });

  it('charges the same call id once when the guardrail runs twice (before and after an approval)', async () => {
    const gate = countingGate(refundGate(1));
    const guardrail = kavachInputGuardrail(gate, { principal });
    const data = (callId: string) => ({
      context: { context: {} } as RunContext<unknown>,
      agent: new Agent({ name: 'finance' }),
      toolCall: { type: 'function_call' as const, callId, name: 'refund', arguments: '{"amount":1,"orderId":"A"}' },
    });
    expect((await guardrail.run(data('same'))).behavior).toEqual({ type: 'allow' });
    expect((await guardrail.run(data('same'))).behavior).toEqual({ type: 'allow' });
    expect((await guardrail.run(data('other'))).behavior).toMatchObject({
      type: 'rejectContent',
      message: expect.stringMatching(/\[RATE_LIMITED\]/),
    });
    expect(gate.calls).toEqual(['same', 'same', 'other']);
  });
});

describe('openai agents: the guardrail judges the arguments the tool will receive (after its schema fills defaults)', () => {
  const gate = () =>
    Gate.fromDict(
      {
        policy: [
          { name: 'no-ceo', effect: 'refuse', conditions: [{ param_in: { field: 'to', values: ['ceo@corp.example'] } }] },
          { name: 'no-wire', effect: 'refuse', conditions: [{ param_in: { field: 'channel', values: ['wire'] } }] },
          { name: 'mail', effect: 'permit', conditions: [{ action: 'send_mail' }] },
        ],
      },
      { drift: false },
    );
  const mailTool = (sent: Array<{ to: string; channel: string }>, extra: Record<string, unknown> = {}) =>
    tool({
      name: 'send_mail',
      description: 'Send a mail.',
      // The schema fills in a missing channel: the gate must judge what the tool runs with.
      parameters: z.object({ to: z.string(), channel: z.string().default('wire') }),
      ...extra,
      execute: async ({ to, channel }) => {
        sent.push({ to, channel });
        return `sent to ${to}`;
      },
    });

  const script = () =>
    new ScriptedModel([
      { call: { id: 'c1', name: 'send_mail', args: { to: 'ceo@corp.example', channel: 'email' } } },
      { call: { id: 'c2', name: 'send_mail', args: { to: 'ops@corp.example' } } },
      { call: { id: 'c3', name: 'send_mail', args: { to: 'ops@corp.example', channel: null } } },
      { call: { id: 'c4', name: 'send_mail', args: { to: 'ops@corp.example', channel: 'email' } } },
      { text: 'done' },
    ]);
  const expectOnlyTheLastSent = (sent: unknown[], model: ScriptedModel) => {
    expect(sent).toEqual([{ to: 'ops@corp.example', channel: 'email' }]);
    const outputs = resultsSeen(model.inputs[4]).map((r) => textOf(r.output));
    expect(outputs[0]).toMatch(/^Refused by policy \[POLICY_DENIED\] policy: 'no-ceo'/);
    expect(outputs[1]).toMatch(/^Refused by policy \[POLICY_DENIED\] policy: 'no-wire'/);
    // strict mode's null for a defaulted field: the schema rejects it, so the tool does not run either way
    expect(outputs[2]).not.toMatch(/^sent/);
    expect(outputs[3]).toBe('sent to ops@corp.example');
  };

  it('guardTool: a channel the schema fills in cannot slip past a refuse policy', async () => {
    const sent: Array<{ to: string; channel: string }> = [];
    const model = script();
    await runner.run(new Agent({ name: 'mailer', model, tools: [guardTool(mailTool(sent), gate(), { principal })] }), 'go');
    expectOnlyTheLastSent(sent, model);
  });

  it('kavachInputGuardrail given to tool() itself finds the tool by name and judges the same', async () => {
    const sent: Array<{ to: string; channel: string }> = [];
    const model = script();
    const guarded = mailTool(sent, { inputGuardrails: [kavachInputGuardrail(gate(), { principal })] });
    await runner.run(new Agent({ name: 'mailer', model, tools: [guarded] }), 'go');
    expectOnlyTheLastSent(sent, model);
  });
});

describe('openai agents result screening', () => {
  function readConfig(result: unknown = LEAKY_CONFIG) {
    return tool({
      name: 'read_config',
      description: 'Read the config file.',
      parameters: z.object({ path: z.string() }),
      execute: async () => result,
    });
  }

  async function runWith(tools: Parameters<typeof Agent.create>[0]['tools']) {
    const model = new ScriptedModel([{ call: { id: 'call-1', name: 'read_config', args: { path: '~/.aws/config' } } }, { text: 'done' }]);
    const bot = new Agent({ name: 'ops', model, tools });
    const result = await runner.run(bot, 'show my aws config');
    expect(result.finalOutput).toBe('done');
    return { seen: resultsSeen(model.inputs[1]), input: JSON.stringify(model.inputs[1]), result };
  }

  it('guardTool, redact: the model reads the result with the key replaced; the audit records where under the permit', async () => {
    const events: GateEvent[] = [];
    const { seen, input } = await runWith([guardTool(readConfig({ file: LEAKY_CONFIG }), screeningGate('redact', events), { principal })]);
    expect(input).not.toContain(LEAKED_KEY);
    expect(textOf(seen[0]?.output)).toContain('[REDACTED:aws_access_key]');
    const [outcome] = outcomes(events);
    const permit = events.find((e) => e.type === 'verdict');
    expect(outcome).toMatchObject({ action: 'read_config', findings: [{ detector: 'aws_access_key', path: '/file', count: 1 }] });
    expect(outcome?.evaluationId).toBe(permit?.type === 'verdict' ? permit.evaluationId : 'none');
    expect(JSON.stringify(events)).not.toContain(LEAKED_KEY);
  });

  it('guardTool, block: the model reads the OUTPUT_BLOCKED refusal and the run goes on', async () => {
    const events: GateEvent[] = [];
    const { seen, input } = await runWith([guardTool(readConfig(), screeningGate('block', events), { principal })]);
    expect(input).not.toContain(LEAKED_KEY);
    expect(textOf(seen[0]?.output)).toBe(
      "Refused by policy [OUTPUT_BLOCKED] screen: the tool's result was withheld: it contained an AWS access key ID (screen 'no-secrets').",
    );
    expect(outcomes(events)[0]).toMatchObject({ withheld: true });
  });

  it('guardTool, report: unchanged, recorded', async () => {
    const events: GateEvent[] = [];
    const { seen } = await runWith([guardTool(readConfig(), screeningGate('report', events), { principal })]);
    expect(textOf(seen[0]?.output)).toBe(LEAKY_CONFIG);
    expect(outcomes(events)).toHaveLength(1);
  });

  it.each(['redact', 'block'] as const)(
    'kavachOutputGuardrail on an uncopied tool, %s: the secret never reaches the model',
    async (mode) => {
      const events: GateEvent[] = [];
      const gate = screeningGate(mode, events);
      const plain = readConfig();
      const screened = tool({
        name: 'read_config',
        description: 'Read the config file.',
        parameters: z.object({ path: z.string() }),
        execute: async () => LEAKY_CONFIG,
        inputGuardrails: [kavachInputGuardrail(gate, { principal })],
        outputGuardrails: [kavachOutputGuardrail(gate, { principal })],
      });
      expect(plain.outputGuardrails ?? []).toEqual([]);
      const { seen, input, result } = await runWith([screened]);
      expect(input).not.toContain(LEAKED_KEY);
      const expected =
        mode === 'redact'
          ? '[default]\naws_access_key_id = [REDACTED:aws_access_key]\nregion = eu-west-1'
          : expect.stringMatching(/^Refused by policy \[OUTPUT_BLOCKED\] screen: /);
      expect(textOf(seen[0]?.output)).toEqual(expected);
      const info = result.toolOutputGuardrailResults[0]?.output.outputInfo as KavachOutputGuardrailInfo;
      expect(info.kavach.findings).toEqual([{ screen: 'no-secrets', detector: 'aws_access_key', path: '', count: 1 }]);
      // Recorded under the evaluation the input guardrail made for this call.
      const permit = events.find((e) => e.type === 'verdict');
      expect(outcomes(events)[0]?.evaluationId).toBe(permit?.type === 'verdict' ? permit.evaluationId : 'none');
    },
  );

  it('a clean result is allowed through untouched by the output guardrail', async () => {
    const gate = screeningGate('block');
    const clean = tool({
      name: 'read_config',
      description: 'Read the config file.',
      parameters: z.object({ path: z.string() }),
      execute: async () => 'region = eu-west-1',
      outputGuardrails: [kavachOutputGuardrail(gate, { principal })],
    });
    const { seen, result } = await runWith([clean]);
    expect(textOf(seen[0]?.output)).toBe('region = eu-west-1');
    expect(result.toolOutputGuardrailResults[0]?.output.behavior).toEqual({ type: 'allow' });
  });
});
