import { Agent, Runner, tool, Usage, type AgentInputItem, type AgentOutputItem, type Model, type ModelRequest, type ModelResponse, type StreamEvent } from '@openai/agents';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { guardTool as guardAgentsTool, kavachInputGuardrail } from '../../src/adapters/openai-agents.ts';
import { Gate } from '../../src/engine/gate.ts';
import { agent as principal } from './fixtures.ts';

/** A scripted Agents SDK model: each turn makes the next tool call, then says done. */
class ScriptedModel implements Model {
  readonly inputs: Array<ModelRequest['input']> = [];
  constructor(private readonly calls: Array<{ id: string; name: string; args: unknown }>) {}
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.inputs.push(request.input);
    const call = this.calls[this.inputs.length - 1];
    const output: AgentOutputItem[] = call
      ? [{ type: 'function_call', callId: call.id, name: call.name, arguments: JSON.stringify(call.args), status: 'completed' }]
      : [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'done' }] }];
    return { usage: new Usage(), output };
  }
  // eslint-disable-next-line require-yield
  async *getStreamedResponse(): AsyncIterable<StreamEvent> {
    throw new Error('not scripted');
  }
}

function outputsSeen(input: ModelRequest['input'] | undefined): string[] {
  if (!Array.isArray(input)) return [];
  return (input as AgentInputItem[])
    .filter((i): i is Extract<AgentInputItem, { type: 'function_call_result' }> => i.type === 'function_call_result')
    .map((i) => (typeof i.output === 'string' ? i.output : (i.output as { text?: string }).text ?? JSON.stringify(i.output)));
}

describe('openai agents guardrail gates the arguments the tool will receive (after its schema fills defaults)', () => {
  const gate = () => Gate.fromDict({
    policy: [
      { name: 'no-ceo', effect: 'refuse', conditions: [{ param_in: { field: 'to', values: ['ceo@corp.example'] } }] },
      { name: 'no-wire', effect: 'refuse', conditions: [{ param_in: { field: 'channel', values: ['wire'] } }] },
      { name: 'mail', effect: 'permit', conditions: [{ action: 'send_mail' }] },
    ],
  }, { drift: false });
  const mailTool = (sent: Array<{ to: string; channel: string }>, extra: Record<string, unknown> = {}) => tool({
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
  const runner = new Runner({ tracingDisabled: true });

  const script = () => new ScriptedModel([
    { id: 'c1', name: 'send_mail', args: { to: 'ceo@corp.example', channel: 'email' } },
    { id: 'c2', name: 'send_mail', args: { to: 'ops@corp.example' } },
    { id: 'c3', name: 'send_mail', args: { to: 'ops@corp.example', channel: null } },
    { id: 'c4', name: 'send_mail', args: { to: 'ops@corp.example', channel: 'email' } },
  ]);
  const expectOnlyTheLastSent = (sent: unknown[], model: ScriptedModel) => {
    expect(sent).toEqual([{ to: 'ops@corp.example', channel: 'email' }]);
    const outputs = outputsSeen(model.inputs[4]);
    expect(outputs[0]).toMatch(/^Refused by policy \[POLICY_DENIED\] policy: 'no-ceo'/);
    expect(outputs[1]).toMatch(/^Refused by policy \[POLICY_DENIED\] policy: 'no-wire'/);
    // strict mode's null for a defaulted field: the schema rejects it, so the tool does not run either way
    expect(outputs[2]).not.toMatch(/^sent/);
    expect(outputs[3]).toBe('sent to ops@corp.example');
  };

  it('guardTool: a channel the schema fills in cannot slip past a refuse policy', async () => {
    const sent: Array<{ to: string; channel: string }> = [];
    const model = script();
    await runner.run(new Agent({ name: 'mailer', model, tools: [guardAgentsTool(mailTool(sent), gate(), { principal })] }), 'go');
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
