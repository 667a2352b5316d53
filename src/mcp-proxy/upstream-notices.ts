import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';
import type { LogRelay } from './log-relay.ts';
import type { ProxySession } from './proxy-state.ts';
import type { Upstream, UpstreamStatus } from './upstream.ts';

interface Outage {
  seq: number;
  level: LoggingLevel;
  text: string;
  reason: string;
}

/**
 * What clients are told, through MCP logging (logger `kavach`), of upstreams that fail: that one
 * is down and when it is restarted, that it is back; and a client that lists tools while one is
 * down hears of it then, so a short list is never silent. The texts carry no client's data, so
 * every client hears them (each at its own log level).
 */
export class UpstreamNotices {
  /** The upstreams down now, with what clients were told of it. */
  private readonly outages = new Map<Upstream, Outage>();
  private seq = 0;
  /** Per session, the outage notices it has heard (by `seq`). */
  private readonly told = new WeakMap<ProxySession, Set<number>>();

  constructor(
    private readonly logs: LogRelay,
    private readonly sessions: () => Iterable<ProxySession>,
  ) {}

  status(u: Upstream, status: UpstreamStatus): void {
    if (status.state === 'ready') {
      if (!this.outages.delete(u)) return;
      this.logs.notice('info', `server '${u.name}' is back (${status.tools} ${status.tools === 1 ? 'tool' : 'tools'})`);
      return;
    }
    // The same failure again in one outage (a command still missing): told once, not per retry.
    if (this.outages.get(u)?.reason === status.reason) return;
    const outage: Outage = {
      seq: ++this.seq,
      // Never up since the proxy started: misconfigured, most likely; else a crash.
      level: status.everReady ? 'warning' : 'error',
      text: `server '${u.name}' is down: ${status.reason}; restarting in ${seconds(status.retryInMs)}; its tools answer UPSTREAM_UNAVAILABLE meanwhile`,
      reason: status.reason,
    };
    this.outages.set(u, outage);
    this.tell([...this.sessions()], outage);
  }

  /** A session listing tools hears of the upstreams down now that it has not heard of. */
  remind(session: ProxySession): void {
    const heard = this.told.get(session);
    for (const outage of this.outages.values()) if (!heard?.has(outage.seq)) this.tell([session], outage);
  }

  private tell(to: ProxySession[], outage: Outage): void {
    // Not before a client's initialize (the protocol says so): it hears when it lists tools.
    const sessions = to.filter((s) => s.server.getClientCapabilities() !== undefined);
    const open = new Set<number>();
    for (const o of this.outages.values()) open.add(o.seq);
    for (const s of sessions) {
      let heard = this.told.get(s);
      if (!heard) this.told.set(s, (heard = new Set()));
      // Only outages still open: a session that lives through a flapping server must not grow.
      for (const seq of heard) if (!open.has(seq)) heard.delete(seq);
      heard.add(outage.seq);
    }
    this.logs.notice(outage.level, outage.text, sessions);
  }
}

/** 500 → "0.5 s", 10000 → "10 s". */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toPrecision(2))} s`;
}
