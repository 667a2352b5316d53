import { CancelledNotificationSchema, ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeUpstream, inProcessProxy, rawClient, tool, until, type InProcessProxy } from './in-process.ts';

const POLICY = '[[policy]]\nname = "all"\neffect = "permit"\nconditions = [{ action = "*" }]\n';

describe('the stdio tools/call fast path and a client that reuses a JSON-RPC id', () => {
  let proxy: InProcessProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('refuses a tools/call whose id is still in flight, and the first call stays cancellable', async () => {
    const fx = new FakeUpstream([tool('slow'), tool('fast')]);
    let release: (() => void) | undefined;
    const cancelled: unknown[] = [];
    fx.respond = (params) =>
      params.name === 'slow'
        ? (new Promise((r) => (release = () => r({ content: [{ type: 'text', text: 'slow done' }] }))) as never)
        : { content: [{ type: 'text', text: 'fast done' }] };
    proxy = await inProcessProxy({ policy: POLICY, upstreams: { fx } });
    (fx.server as NonNullable<FakeUpstream['server']>).setNotificationHandler(
      CancelledNotificationSchema,
      (n) => void cancelled.push(n.params),
    );
    // A raw client on its own session, so it can send what the SDK client never would.
    const raw = await rawClient(proxy);
    const call = (name: string, id = 7) => raw.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

    await call('fx__slow');
    await until('the slow call upstream', () => fx.calls.length >= 1);
    await call('fx__fast');
    await until('the refusal', () => raw.got.length >= 1);
    // The second call never ran: one id, one call.
    expect(fx.calls.map((c) => c.name)).toEqual(['slow']);
    expect(raw.got[0]).toMatchObject({ id: 7, error: { code: ErrorCode.InvalidRequest } });

    await raw.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'changed my mind' } });
    await until('the cancellation upstream', () => cancelled.length >= 1);
    expect(cancelled).toMatchObject([{ reason: 'changed my mind' }]);
    release?.();
    // A later call's answer: whatever the slow one would have answered came before it.
    await call('fx__fast', 8);
    await until("the later call's answer", () => raw.got.some((m) => 'id' in m && m.id === 8));
    // Cancelled: no result for id 7 beyond the refusal.
    expect(raw.got.filter((m) => 'id' in m && m.id === 7)).toHaveLength(1);
    await raw.close();
  });
});
