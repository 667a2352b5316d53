import OpenAI from 'openai';
import { zodFunction } from 'openai/helpers/zod';
import type { ChatCompletionMessageToolCall } from 'openai/resources/chat/completions';
import type { ResponseFunctionToolCall } from 'openai/resources/responses/responses';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { gateToolCalls, guardRunnableTools } from '../../src/adapters/openai.ts';
import type { GateEvent } from '../../src/engine/ports.ts';
import { agent, countingGate, LEAKED_KEY, LEAKY_CONFIG, outcomes, refundGate, screeningGate, throwingGate } from './fixtures.ts';

type Turn = { toolCalls: Array<{ id: string; name: string; args: unknown }> } | { text: string };

/** What the client sent: the conversation so far and the tools it offered. */
type ScriptedRequest = { messages: Array<Record<string, unknown>>; tools?: Array<{ function: { name: string } }> };

/** An OpenAI client whose fetch answers chat completions from a script and records each request. */
function scriptedClient(turns: Turn[]) {
  const requests: ScriptedRequest[] = [];
  const fetch = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    requests.push(JSON.parse(String(init?.body)) as ScriptedRequest);
    const turn = turns[requests.length - 1];
    if (!turn) return new Response(JSON.stringify({ error: { message: 'script exhausted' } }), { status: 400 });
    const message =
      'text' in turn
        ? { role: 'assistant', content: turn.text, refusal: null }
        : {
            role: 'assistant',
            content: null,
            refusal: null,
            tool_calls: turn.toolCalls.map((c) => ({
              id: c.id,
              type: 'function',
              function: { name: c.name, arguments: JSON.stringify(c.args) },
            })),
          };
    const body = {
      id: `cmpl-${requests.length}`,
      object: 'chat.completion',
      created: 0,
      model: 'fake',
      choices: [{ index: 0, message, finish_reason: 'text' in turn ? 'stop' : 'tool_calls', logprobs: null }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    };
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  return { client: new OpenAI({ apiKey: 'test', fetch, maxRetries: 0 }), requests };
}

function refundRunnable(ran: number[]) {
  return {
    type: 'function' as const,
    function: {
      name: 'refund',
      description: 'Refund an order, in dollars.',
      parameters: {
        type: 'object',
        properties: { amount: { type: 'number' }, orderId: { type: 'string' } },
        required: ['amount', 'orderId'],
      },
      parse: (input: string) => JSON.parse(input) as { amount: number; orderId: string },
      function: async (args: { amount: number; orderId: string }) => {
        ran.push(args.amount);
        return { refunded: args.amount };
      },
    },
  };
}

function toolMessagesOf(request: { messages: Array<Record<string, unknown>> } | undefined) {
  return (request?.messages ?? []).filter((m) => m.role === 'tool');
}

describe('openai runTools with guardRunnableTools', () => {
  it('runs the permitted tool, refuses the other without running it, and the model sees the refusal and continues', async () => {
    const ran: number[] = [];
    const { client, requests } = scriptedClient([
      { toolCalls: [{ id: 'call-1', name: 'refund', args: { amount: 40, orderId: 'A1' } }] },
      { toolCalls: [{ id: 'call-2', name: 'refund', args: { amount: 5000, orderId: 'A2' } }] },
      { text: 'One refund done; the other needs a human.' },
    ]);
    const runner = client.chat.completions.runTools({
      model: 'fake',
      messages: [{ role: 'user', content: 'refund A1 and A2' }],
      tools: guardRunnableTools([refundRunnable(ran)], refundGate(), { principal: agent }),
    });
    expect(await runner.finalContent()).toBe('One refund done; the other needs a human.');
    expect(ran).toEqual([40]);
    expect(requests).toHaveLength(3);
    expect(toolMessagesOf(requests[2])).toEqual([
      { role: 'tool', tool_call_id: 'call-1', content: '{"refunded":40}' },
      { role: 'tool', tool_call_id: 'call-2', content: expect.stringMatching(/^Refused by policy \[NO_POLICY_MATCH\] policy: /) },
    ]);
  });

  it('uses each call id once: identical parallel calls are charged separately, a gate seeing them twice is not', async () => {
    const ran: number[] = [];
    const gate = countingGate(refundGate(5));
    const { client } = scriptedClient([
      {
        toolCalls: [
          { id: 'p1', name: 'refund', args: { amount: 1, orderId: 'A' } },
          { id: 'p2', name: 'refund', args: { amount: 1, orderId: 'A' } },
        ],
      },
      { text: 'done' },
    ]);
    await client.chat.completions
      .runTools({
        model: 'fake',
        messages: [{ role: 'user', content: 'go' }],
        tools: guardRunnableTools([refundRunnable(ran)], gate, { principal: agent }),
      })
      .done();
    expect(gate.calls.sort()).toEqual(['p1', 'p2']);
    expect(ran).toEqual([1, 1]);
  });

  it('returns the refusal as the result when the gate throws; the runner goes on', async () => {
    const ran: number[] = [];
    const { client, requests } = scriptedClient([
      { toolCalls: [{ id: 'x', name: 'refund', args: { amount: 1, orderId: 'A' } }] },
      { text: 'could not refund' },
    ]);
    const content = await client.chat.completions
      .runTools({
        model: 'fake',
        messages: [{ role: 'user', content: 'go' }],
        tools: guardRunnableTools([refundRunnable(ran)], throwingGate, { principal: agent }),
      })
      .finalContent();
    expect(content).toBe('could not refund');
    expect(ran).toEqual([]);
    expect(toolMessagesOf(requests[1])[0]?.content).toMatch(/^Refused by policy \[INVALID_CONTEXT\]/);
  });

  it('keeps name, description, parameters, parse and types; auto-parseable (zodFunction) tools too', () => {
    const plain = refundRunnable([]);
    const zodTool = zodFunction({
      name: 'refund',
      parameters: z.object({ amount: z.number(), orderId: z.string() }),
      function: async () => 'ok',
    });
    const tools = [plain, zodTool] as const;
    const [g1, g2] = guardRunnableTools(tools, refundGate(), { principal: agent });
    expect(g1.function.name).toBe(plain.function.name);
    expect(g1.function.description).toBe(plain.function.description);
    expect(g1.function.parameters).toEqual(plain.function.parameters);
    expect(g1.function.parse).toBe(plain.function.parse);
    expect(g1.function.function).not.toBe(plain.function.function);
    expect(g2).toEqual(zodTool);
    expect((g2 as unknown as { $brand: string }).$brand).toBe('auto-parseable-tool');
    expect((g2 as unknown as { $callback: unknown }).$callback).not.toBe((zodTool as unknown as { $callback: unknown }).$callback);
    expectTypeOf(g1).toEqualTypeOf(plain);
    expectTypeOf(g2).toEqualTypeOf(zodTool);
  });
});

describe('openai gateToolCalls', () => {
  const chatCall = (id: string, name: string, args: string): ChatCompletionMessageToolCall => ({
    id,
    type: 'function',
    function: { name, arguments: args },
  });

  it('answers every Chat Completions call id once: run, refused, unknown or malformed', async () => {
    const ran: number[] = [];
    const handlers = {
      refund: (args: Record<string, unknown>) => {
        ran.push(args.amount as number);
        return `refunded ${String(args.amount)}`;
      },
    };
    const outputs = await gateToolCalls(
      [
        chatCall('a', 'refund', '{"amount":10,"orderId":"A"}'),
        chatCall('b', 'refund', '{"amount":500,"orderId":"B"}'),
        chatCall('c', 'delete_everything', '{}'),
        chatCall('d', 'refund', '{not json'),
      ],
      handlers,
      refundGate(),
      { principal: agent },
    );
    expect(ran).toEqual([10]);
    expect(outputs.map((o) => o.tool_call_id)).toEqual(['a', 'b', 'c', 'd']);
    expect(outputs[0]).toEqual({ role: 'tool', tool_call_id: 'a', content: 'refunded 10' });
    expect(outputs[1]?.content).toMatch(/^Refused by policy \[NO_POLICY_MATCH\]/);
    expect(outputs[2]?.content).toMatch(/^Unknown tool 'delete_everything'/);
    expect(outputs[3]?.content).toMatch(/not valid JSON/);
  });

  it('answers Responses function_call items with function_call_output items', async () => {
    const calls: ResponseFunctionToolCall[] = [
      { type: 'function_call', call_id: 'r1', name: 'refund', arguments: '{"amount":10,"orderId":"A"}' },
      { type: 'function_call', call_id: 'r2', name: 'refund', arguments: '{"amount":10,"orderId":"A"}' },
    ];
    const outputs = await gateToolCalls(calls, { refund: () => ({ ok: true }) }, refundGate(1), { principal: agent });
    expectTypeOf(outputs[0]).toExtend<{ type: 'function_call_output' } | undefined>();
    expect(outputs[0]).toEqual({ type: 'function_call_output', call_id: 'r1', output: '{"ok":true}' });
    expect(outputs[1]?.output).toMatch(/^Refused by policy \[RATE_LIMITED\] policy: 'agent_refunds' .*retry after \d+s\.$/);
  });

  it('charges a replayed call id once and refuses when the gate throws', async () => {
    const gate = countingGate(refundGate(1));
    const handlers = { refund: () => 'ok' };
    const call = chatCall('same', 'refund', '{"amount":1,"orderId":"A"}');
    expect((await gateToolCalls([call], handlers, gate, { principal: agent }))[0]?.content).toBe('ok');
    expect((await gateToolCalls([call], handlers, gate, { principal: agent }))[0]?.content).toBe('ok');
    expect((await gateToolCalls([call], handlers, throwingGate, { principal: agent }))[0]?.content).toMatch(
      /^Refused by policy \[INVALID_CONTEXT\]/,
    );
  });

  it('runs a call id listed twice in one turn once (a repeated id is charged once, so it must not run twice)', async () => {
    const ran: string[] = [];
    const call = chatCall('dup', 'refund', '{"amount":1,"orderId":"A"}');
    const outputs = await gateToolCalls(
      [call, call],
      {
        refund: (a) => {
          ran.push(a.orderId as string);
          return 'ok';
        },
      },
      refundGate(1),
      { principal: agent },
    );
    expect(ran).toEqual(['A']);
    expect(outputs).toHaveLength(2);
    expect(outputs[0]?.content).toBe('ok');
    expect(outputs[1]?.content).toMatch(/listed more than once/);
  });

  it('drives a hand-rolled Chat Completions loop to the end', async () => {
    const ran: number[] = [];
    const { client, requests } = scriptedClient([
      {
        toolCalls: [
          { id: 'h1', name: 'refund', args: { amount: 20, orderId: 'A' } },
          { id: 'h2', name: 'refund', args: { amount: 999, orderId: 'B' } },
        ],
      },
      { text: 'partly done' },
    ]);
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'go' }];
    for (;;) {
      const completion = await client.chat.completions.create({ model: 'fake', messages });
      const message = completion.choices[0]?.message;
      if (!message?.tool_calls?.length) break;
      messages.push(message);
      messages.push(
        ...(await gateToolCalls(
          message.tool_calls,
          {
            refund: (a) => {
              ran.push(a.amount as number);
              return 'ok';
            },
          },
          refundGate(),
          { principal: agent },
        )),
      );
    }
    expect(ran).toEqual([20]);
    expect(toolMessagesOf(requests[1]).map((m) => m.tool_call_id)).toEqual(['h1', 'h2']);
  });
});

describe('openai runTools: a tool named only by its function keeps its name', () => {
  it('the guarded copy is offered, and called, under the function name the gate judges', async () => {
    const { client, requests } = scriptedClient([
      { toolCalls: [{ id: 'c1', name: 'lookup_order', args: { id: 'A1' } }] },
      { text: 'done' },
    ]);
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
      model: 'fake',
      messages: [{ role: 'user', content: 'go' }],
      tools: guardRunnableTools([tool], refundGate(), { principal: agent }),
    });
    expect(await runner.finalContent()).toBe('done');
    expect(requests[0]?.tools?.map((t) => t.function.name)).toEqual(['lookup_order']);
    expect(looked).toEqual(['A1']);
  });
});

describe('openai result screening', () => {
  const readConfigRunnable = (result: unknown) => ({
    type: 'function' as const,
    function: {
      name: 'read_config',
      description: 'Read the config file.',
      parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
      parse: (input: string) => JSON.parse(input) as { path: string },
      function: async () => result,
    },
  });

  async function runTools(mode: 'redact' | 'block' | 'report', result: unknown = LEAKY_CONFIG) {
    const events: GateEvent[] = [];
    const { client, requests } = scriptedClient([
      { toolCalls: [{ id: 'call-1', name: 'read_config', args: { path: '~/.aws/config' } }] },
      { text: 'done' },
    ]);
    const runner = client.chat.completions.runTools({
      model: 'fake',
      messages: [{ role: 'user', content: 'show my aws config' }],
      tools: guardRunnableTools([readConfigRunnable(result)], screeningGate(mode, events), { principal: agent }),
    });
    expect(await runner.finalContent()).toBe('done');
    return { sent: toolMessagesOf(requests[1]), events };
  }

  it('runTools, redact: the tool message the model gets has the key replaced; the audit says where, never the key', async () => {
    const { sent, events } = await runTools('redact', { file: LEAKY_CONFIG });
    expect(sent).toEqual([
      {
        role: 'tool',
        tool_call_id: 'call-1',
        content: JSON.stringify({ file: '[default]\naws_access_key_id = [REDACTED:aws_access_key]\nregion = eu-west-1' }),
      },
    ]);
    expect(outcomes(events)[0]).toMatchObject({
      action: 'read_config',
      findings: [{ screen: 'no-secrets', detector: 'aws_access_key', path: '/file', count: 1 }],
    });
    expect(JSON.stringify(events)).not.toContain(LEAKED_KEY);
  });

  it('runTools, block: the model gets the OUTPUT_BLOCKED refusal and goes on', async () => {
    const { sent, events } = await runTools('block');
    expect(sent).toEqual([
      {
        role: 'tool',
        tool_call_id: 'call-1',
        content:
          "Refused by policy [OUTPUT_BLOCKED] screen: the tool's result was withheld: it contained an AWS access key ID (screen 'no-secrets').",
      },
    ]);
    expect(outcomes(events)[0]).toMatchObject({ withheld: true });
  });

  it("runTools: a tool's thrown error leaves the run screened (the application may show it, or give it to the model)", async () => {
    const failing = readConfigRunnable(undefined);
    failing.function.function = async () => {
      throw new TypeError(`no profile for ${LEAKED_KEY}`);
    };
    const events: GateEvent[] = [];
    const { client } = scriptedClient([
      { toolCalls: [{ id: 'call-1', name: 'read_config', args: { path: '~/.aws/config' } }] },
      { text: 'done' },
    ]);
    const runner = client.chat.completions.runTools({
      model: 'fake',
      messages: [{ role: 'user', content: 'show my aws config' }],
      tools: guardRunnableTools([failing], screeningGate('redact', events), { principal: agent }),
    });
    const err = (await runner.finalContent().catch((e: unknown) => e)) as Error;
    expect(err.message).toBe('no profile for [REDACTED:aws_access_key]');
    expect(outcomes(events)[0]).toMatchObject({ outcome: 'tool_error', findings: [{ detector: 'aws_access_key' }] });
    expect(JSON.stringify(events)).not.toContain(LEAKED_KEY);
  });

  it('runTools, report: the result goes through unchanged, the finding is recorded', async () => {
    const { sent, events } = await runTools('report');
    expect(sent[0]?.content).toBe(LEAKY_CONFIG);
    expect(outcomes(events)).toHaveLength(1);
  });

  it('gateToolCalls screens handler results and handler errors (an error message reaches the model too)', async () => {
    const events: GateEvent[] = [];
    const handlers = {
      read_config: (args: Record<string, unknown>) => {
        if (args.path === 'missing') throw new Error(`no profile for key ${LEAKED_KEY}`);
        return { text: LEAKY_CONFIG };
      },
    };
    const calls: ResponseFunctionToolCall[] = [
      { type: 'function_call', call_id: 'r1', name: 'read_config', arguments: '{"path":"a"}' },
      { type: 'function_call', call_id: 'r2', name: 'read_config', arguments: '{"path":"missing"}' },
    ];
    const outputs = await gateToolCalls(calls, handlers, screeningGate('redact', events), { principal: agent });
    expect(JSON.stringify(outputs)).not.toContain(LEAKED_KEY);
    expect(outputs[0]?.output).toBe(
      JSON.stringify({ text: '[default]\naws_access_key_id = [REDACTED:aws_access_key]\nregion = eu-west-1' }),
    );
    expect(outputs[1]?.output).toBe("Tool 'read_config' failed: no profile for key [REDACTED:aws_access_key]");
    expect(outcomes(events).map((o) => o.outcome)).toEqual(['ok', 'tool_error']);

    const blocked = await gateToolCalls(calls.slice(0, 1), handlers, screeningGate('block'), { principal: agent });
    expect(blocked[0]?.output).toMatch(/^Refused by policy \[OUTPUT_BLOCKED\] screen: /);
  });
});
