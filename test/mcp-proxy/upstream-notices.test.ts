import { describe, expect, it } from 'vitest';
import type { LogRelay } from '../../src/mcp-proxy/log-relay.ts';
import type { ProxySession } from '../../src/mcp-proxy/proxy-state.ts';
import type { Upstream } from '../../src/mcp-proxy/upstream.ts';
import { UpstreamNotices } from '../../src/mcp-proxy/upstream-notices.ts';

describe('upstream outage notices', () => {
  it('a long-lived session remembers only the outages still open: a server that keeps failing does not grow it', () => {
    const sent: string[] = [];
    const logs = { notice: (_level: string, text: string) => void sent.push(text) } as unknown as LogRelay;
    const session = { server: { getClientCapabilities: () => ({}) } } as unknown as ProxySession;
    const notices = new UpstreamNotices(logs, () => [session]);
    const fx = { name: 'fx' } as Upstream;
    for (let i = 0; i < 500; i++) {
      notices.status(fx, { state: 'down', reason: `the connection closed (${i})`, retryInMs: 500, everReady: true });
      notices.status(fx, { state: 'ready', tools: 1 });
    }
    expect(sent).toHaveLength(1000);
    notices.status(fx, { state: 'down', reason: 'the connection closed (last)', retryInMs: 500, everReady: true });
    // Heard already: listing tools does not tell it again.
    notices.remind(session);
    expect(sent).toHaveLength(1001);
    const told = (notices as unknown as { told: WeakMap<ProxySession, Set<number>> }).told.get(session);
    expect(told?.size).toBe(1);
  });
});
