// What a server sends the client of its own accord (sampling, elicitation, log lines) is screened
// under `<server>.<method>` as its tool results are: redacted, or withheld in block mode.
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  type LoggingMessageNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeUpstream, inProcessProxy, tool, until, type InProcessProxy } from './in-process.ts';

// Built at run time so no scanner mistakes this file for a leak: AKIA + 16 base32 characters.
const FAKE_KEY = `AKIA${'QX7Z2M4K'.repeat(2)}`;
const TEST_CARD = ['4111', '1111', '1111', '1111'].join(' ');
const POLICY = `[[policy]]
name = "all"
effect = "permit"
conditions = [{ action = "*" }]

[[screen]]
name = "no-keys"
actions = ["fx.*"]
detectors = ["aws_access_key"]
mode = "redact"

[[screen]]
name = "no-cards"
actions = ["fx.*"]
detectors = ["card_number"]
mode = "block"
`;

describe('server-initiated messages are screened like tool results', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  async function start(): Promise<{ fx: FakeUpstream; p: InProcessProxy; logs: string[]; records: Record<string, unknown>[] }> {
    const fx = new FakeUpstream([tool('a')]);
    const logs: string[] = [];
    const records: Record<string, unknown>[] = [];
    proxy = await inProcessProxy({
      policy: POLICY,
      upstreams: { fx },
      capabilities: { sampling: {}, elicitation: {} },
      log: (m) => logs.push(m),
      outcomes: { append: async (r) => void records.push(r as unknown as Record<string, unknown>) },
    });
    // Upstreams start on the session's first request.
    await proxy.client.listTools();
    await until('the upstream to be connected', () => fx.server !== undefined);
    return { fx, p: proxy, logs, records };
  }

  it('a sampling request reaches the client model redacted, and one a block screen finds is refused to the server', async () => {
    const { fx, p, logs, records } = await start();
    const seen: string[] = [];
    p.client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      seen.push(JSON.stringify(request.params.messages[0]?.content));
      return { role: 'assistant', content: { type: 'text', text: 'ok' }, model: 'm' };
    });
    const server = fx.server as NonNullable<FakeUpstream['server']>;
    const answered = await server.createMessage({
      messages: [{ role: 'user', content: { type: 'text', text: `deploy with ${FAKE_KEY} please` } }],
      maxTokens: 5,
    });
    expect(answered.content).toEqual({ type: 'text', text: 'ok' });
    expect(seen).toEqual([JSON.stringify({ type: 'text', text: 'deploy with [REDACTED:aws_access_key] please' })]);
    expect(logs.join('\n')).toContain('upstream fx: sampling/createMessage: aws_access_key at /messages/0/content/text; redacted');
    expect(logs.join('\n')).not.toContain(FAKE_KEY);

    const refused = await server
      .createMessage({ messages: [{ role: 'user', content: { type: 'text', text: `charge ${TEST_CARD}` } }], maxTokens: 5 })
      .then(
        () => 'answered',
        (err: Error) => err.message,
      );
    expect(refused).toContain('withheld by a [[screen]]');
    expect(seen).toHaveLength(1);
    // The audit log keeps where, never what.
    expect(records).toMatchObject([
      {
        type: 'kavach.mcp_screened',
        server: 'fx',
        method: 'sampling/createMessage',
        findings: [{ screen: 'no-keys', detector: 'aws_access_key', path: '/messages/0/content/text', count: 1 }],
      },
      { type: 'kavach.mcp_screened', method: 'sampling/createMessage', findings: [{ detector: 'card_number' }], withheld: true },
    ]);
    expect(records[0]?.withheld).toBeUndefined();
    expect(JSON.stringify(records)).not.toContain(FAKE_KEY);
  });

  it('an elicitation reaches the user redacted', async () => {
    const { fx, p } = await start();
    const asked: string[] = [];
    p.client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(String(request.params.message));
      return { action: 'decline' };
    });
    const server = fx.server as NonNullable<FakeUpstream['server']>;
    await server.elicitInput({ message: `confirm key ${FAKE_KEY}?`, requestedSchema: { type: 'object', properties: {} } });
    expect(asked).toEqual(['confirm key [REDACTED:aws_access_key]?']);
  });

  it('a log line is passed on redacted, and one a block screen finds is dropped', async () => {
    const { fx, p, logs } = await start();
    const received: LoggingMessageNotification['params'][] = [];
    p.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void received.push(n.params));
    const server = fx.server as NonNullable<FakeUpstream['server']>;
    await server.sendLoggingMessage({ level: 'info', data: `loaded ${FAKE_KEY}` });
    await server.sendLoggingMessage({ level: 'info', data: `card ${TEST_CARD} on file` });
    await server.sendLoggingMessage({ level: 'info', data: 'done' });
    await until('the last log line', () => received.some((m) => m.data === 'done'));
    expect(received.map((m) => m.data)).toEqual(['loaded [REDACTED:aws_access_key]', 'done']);
    expect(logs.join('\n')).toContain('upstream fx: notifications/message: card_number at /data; withheld');
  });
});
