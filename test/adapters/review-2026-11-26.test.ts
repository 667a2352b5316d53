import { Agent, Runner, tool, Usage, type AgentInputItem, type AgentOutputItem, type Model, type ModelRequest, type ModelResponse, type StreamEvent } from '@openai/agents';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { guardTool as guardAgentsTool, kavachInputGuardrail } from '../../src/adapters/openai-agents.ts';
import OpenAI from 'openai';
import { guardRunnableTools } from '../../src/adapters/openai.ts';
import { Gate } from '../../src/engine/gate.ts';
import { agent as principal, refundGate } from './fixtures.ts';

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

describe('openai runTools: a tool named only by its function keeps its name', () => {
  it('the guarded copy is offered, and called, under the function name the gate judges', async () => {
    const requests: Array<{ tools?: Array<{ function: { name: string } }>; messages: Array<Record<string, unknown>> }> = [];
    const turns = [
      { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup_order', arguments: '{"id":"A1"}' } }] },
      { role: 'assistant', content: 'done', refusal: null },
    ];
    const fetch = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
      requests.push(JSON.parse(String(init?.body)) as (typeof requests)[number]);
      const message = turns[requests.length - 1];
      return new Response(JSON.stringify({
        id: 'x', object: 'chat.completion', created: 0, model: 'fake',
        choices: [{ index: 0, message, finish_reason: message?.tool_calls ? 'tool_calls' : 'stop', logprobs: null }],
      }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const client = new OpenAI({ apiKey: 'test', fetch, maxRetries: 0 });
    const looked: string[] = [];
    // The SDK takes a tool's name from its function's name when none is given.
    const tool = {
      type: 'function' as const,
      function: {
        description: 'Look an order up.',
        parameters: { type: 'object', properties: { id: { type: 'string' } } },
        parse: (s: string) => JSON.parse(s) as { id: string },
        function: async function lookup_order(args: { id: string }) {
          looked.push(args.id);
          return 'found';
        },
      },
    };
    const runner = client.chat.completions.runTools({
      model: 'fake', messages: [{ role: 'user', content: 'go' }], tools: guardRunnableTools([tool], refundGate(), { principal }),
    });
    expect(await runner.finalContent()).toBe('done');
    expect(requests[0]?.tools?.map((t) => t.function.name)).toEqual(['lookup_order']);
    expect(looked).toEqual(['A1']);
  });
});
