import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { LoggingMessageNotificationSchema, type LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { RestartPolicy } from '../../src/mcp-proxy/restart-backoff.ts';
import type { ToolHold } from '../../src/mcp-proxy/pinning.ts';
import { DOWN_REASON_MAX } from '../../src/mcp-proxy/upstream.ts';
import { REFUSAL_REASON_MAX, type ProxyRefusalRecord } from '../../src/mcp-proxy/tool-calls.ts';
import { ALICE, FakeUpstream, inProcessProxy, tool, until, type InProcessProxy } from './in-process.ts';

const POLICY = '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = ["fx.*", "gone.*"] }]\n';
/** Short waits, and "healthy" only by answered calls, so the schedule is the test's to drive. */
const QUICK: RestartPolicy = { delaysMs: [30, 60, 120], healthyAfterMs: 3_600_000, healthyAfterCalls: 2 };

/** What the proxy itself (logger `kavach`) told a client. */
function notices(client: Client): LoggingMessageNotification['params'][] {
  const out: LoggingMessageNotification['params'][] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    if (n.params.logger === 'kavach') out.push(n.params);
  });
  return out;
}

/** An upstream whose process cannot be started (spawn's ENOENT). */
class MissingUpstream extends FakeUpstream {
  override connect(): InMemoryTransport {
    const missing = Object.assign(new Error('spawn unused ENOENT'), { code: 'ENOENT' });
    return {
      start: () => Promise.reject(missing),
      send: async () => undefined,
      close: async () => undefined,
    } as unknown as InMemoryTransport;
  }
}

describe('upstream restarts, as clients hear of them', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  const crash = async (fx: FakeUpstream): Promise<void> => {
    await fx.server?.close();
    await until('the proxy to see the crash', () => proxy?.core.upstreams[0]?.state !== 'ready');
  };
  const backUp = () => until('the upstream to be back', () => proxy?.core.upstreams[0]?.state === 'ready');

  it('tells each client a server is down (and when it restarts) and that it is back, at the level it asked for', async () => {
    const fx = new FakeUpstream([tool('a')]);
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx }, restartPolicy: QUICK });
    const alice = notices(proxy.client);
    const quiet = await proxy.connect(ALICE);
    const quietHeard = notices(quiet);
    await quiet.setLoggingLevel('error');
    await proxy.client.listTools();
    await crash(fx);
    await backUp();
    await until('the back notice', () => alice.length === 2);
    expect(alice).toEqual([
      {
        level: 'warning',
        logger: 'kavach',
        data: "server 'fx' is down: the connection closed; restarting in 0.03 s; its tools answer UPSTREAM_UNAVAILABLE meanwhile",
      },
      { level: 'info', logger: 'kavach', data: "server 'fx' is back (1 tool)" },
    ]);
    expect(quietHeard).toEqual([]);
  });

  it('backs off a server that dies right after each start, and starts over once it answered calls', async () => {
    const fx = new FakeUpstream([tool('a')]);
    const logs: string[] = [];
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx }, restartPolicy: QUICK, log: (m) => logs.push(m) });
    const waits = () => logs.flatMap((l) => /restarting in (\d+) ms/.exec(l)?.[1] ?? []).map(Number);
    await proxy.client.listTools();
    for (let i = 0; i < 4; i++) {
      await crash(fx);
      await backUp();
    }
    expect(waits()).toEqual([30, 60, 120, 120]);
    // Two answered calls: healthy again, so the next crash is retried at once.
    for (const _ of [1, 2]) expect((await proxy.client.callTool({ name: 'fx__a', arguments: {} })).isError).toBeFalsy();
    await crash(fx);
    await backUp();
    expect(waits()).toEqual([30, 60, 120, 120, 30]);
  });

  it('a client that lists tools while a server cannot start hears why, once; its pinned tools are refused with the reason', async () => {
    const gone = new MissingUpstream([]);
    const fx = new FakeUpstream([tool('a')]);
    const pins = {
      load: async () => undefined,
      check: async () => new Map<string, ToolHold>(),
      pinnedOf: (server: string) => (server === 'gone' ? [tool('read')] : []),
    };
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { gone, fx }, restartPolicy: QUICK, pins });
    await proxy.client.listTools();
    // Connected after the failure was announced: told when it lists.
    const later = await proxy.connect(ALICE);
    const heard = notices(later);
    const { tools } = await later.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['fx__a', 'gone__read']);
    await until('the notice', () => heard.length === 1);
    expect(heard[0]).toMatchObject({
      level: 'error',
      data: expect.stringContaining("server 'gone' is down: failed to start: command 'unused' not found"),
    });
    const refused = await later.callTool({ name: 'gone__read', arguments: {} });
    expect(refused.isError).toBe(true);
    expect(JSON.stringify(refused.content)).toContain(
      "[UPSTREAM_UNAVAILABLE] Server 'gone' is unavailable (failed to start: command 'unused' not found)",
    );
    await later.listTools();
    await proxy.client.callTool({ name: 'fx__a', arguments: {} });
    expect(heard).toHaveLength(1);
  });
});

describe('a refusal the proxy records for a server that cannot start', () => {
  it('keeps a long start error to DOWN_REASON_MAX characters on one line, for the client and for the audit log', async () => {
    // Not a spawn error: the reason is the error's own text, as long as the server (or SDK) made it.
    class Babbling extends FakeUpstream {
      override connect(): InMemoryTransport {
        const failed = new Error(`initialize failed:\n\u001b[2J ${'x'.repeat(10_000)}`);
        return {
          start: () => Promise.reject(failed),
          send: async () => undefined,
          close: async () => undefined,
        } as unknown as InMemoryTransport;
      }
    }
    const recorded: ProxyRefusalRecord[] = [];
    const pins = {
      load: async () => undefined,
      check: async () => new Map<string, ToolHold>(),
      pinnedOf: (server: string) => (server === 'gone' ? [tool('read')] : []),
    };
    const outcomes = { append: async (r: unknown) => void recorded.push(r as ProxyRefusalRecord) };
    const proxy = await inProcessProxy({ policy: POLICY, upstreams: { gone: new Babbling([]) }, restartPolicy: QUICK, pins, outcomes });
    try {
      await proxy.client.listTools();
      const refused = await proxy.client.callTool({ name: 'gone__read', arguments: {} });
      expect(JSON.stringify(refused.content)).toContain('[UPSTREAM_UNAVAILABLE]');
      // What the client is told: the start of the error, cut, with no terminal escapes.
      const told = (refused.content as { text: string }[])[0]?.text as string;
      expect(told).toContain(`initialize failed: [2J ${'x'.repeat(100)}`);
      expect(told.length).toBeLessThan(DOWN_REASON_MAX + 300);
      expect(told).not.toContain('\u001b');
      await until('the refusal record', () => recorded.length === 1);
      expect(recorded[0]).toMatchObject({ type: 'kavach.mcp_refusal', code: 'UPSTREAM_UNAVAILABLE' });
      // The runtime's audit schema refuses a longer reason: the refusal would go unrecorded.
      expect(recorded[0]?.reason.length).toBeLessThanOrEqual(REFUSAL_REASON_MAX);
      expect(recorded[0]?.reason).toContain("server 'gone' is unavailable (failed to start: initialize failed: [2J xxx");
    } finally {
      await proxy.close();
    }
  });
});
