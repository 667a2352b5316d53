import { LoggingLevelSchema, type LoggingLevel, type LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js';
import type { ProxySession, ProxyShared } from './proxy-state.ts';
import { screenedServerMessage } from './screening.ts';
import type { Upstream } from './upstream.ts';

/** Log levels from the most verbose (`debug`) to the least. */
const LOG_SEVERITY = new Map<LoggingLevel, number>(LoggingLevelSchema.options.map((level, i) => [level, i]));

/** Upstream log messages to the sessions that asked for them, at the level each asked for. */
export class LogRelay {
  /** The level each session asked for with `logging/setLevel`; upstreams get the most verbose one. */
  private readonly levels = new Map<ProxySession, LoggingLevel>();
  private upstreamLevel: LoggingLevel | undefined;

  constructor(private readonly shared: ProxyShared) {}

  /**
   * An upstream log line cannot be traced to the call that caused it and may carry one client's
   * data: with clients of several principals connected (HTTP mode) it stays on stderr.
   */
  relay(u: Upstream, raw: LoggingMessageNotification['params']): void {
    // A log line is the server's text too: screened as its results are (a withheld one is dropped).
    const screened = screenedServerMessage(this.shared, u.name, 'notifications/message', raw);
    if (screened.withheld) return;
    const params = screened.value;
    const sessions = this.shared.sessions;
    const principals = new Set([...sessions].map((s) => s.principal.principalId));
    if (principals.size > 1) {
      this.shared.log(
        `upstream ${u.name} [${params.level}]${params.logger ? ` ${params.logger}` : ''}: ${JSON.stringify(params.data)?.slice(0, 1000)}`,
      );
      return;
    }
    const message = { ...params, logger: params.logger ? `${u.name}/${params.logger}` : u.name };
    const severity = LOG_SEVERITY.get(params.level) ?? 0;
    for (const s of sessions) {
      const wanted = this.levels.get(s);
      if (wanted !== undefined && severity < (LOG_SEVERITY.get(wanted) ?? 0)) continue;
      void s.server.sendLoggingMessage(message).catch(() => undefined);
    }
  }

  /** The proxy's own word to clients (logger `kavach`), each sent it at or above its level. */
  notice(level: LoggingLevel, data: string, to: Iterable<ProxySession> = this.shared.sessions): void {
    const severity = LOG_SEVERITY.get(level) ?? 0;
    for (const s of to) {
      const wanted = this.levels.get(s);
      if (wanted !== undefined && severity < (LOG_SEVERITY.get(wanted) ?? 0)) continue;
      void s.server.sendLoggingMessage({ level, logger: 'kavach', data }).catch(() => undefined);
    }
  }

  /**
   * One session's `logging/setLevel`. Upstreams are shared, so they log at the most verbose level
   * any connected session asked for; each session is sent only what is at or above its own level.
   */
  async setLevel(session: ProxySession, level: LoggingLevel): Promise<void> {
    this.levels.set(session, level);
    await this.apply();
  }

  sessionClosed(session: ProxySession): void {
    if (this.levels.delete(session)) void this.apply();
  }

  private async apply(): Promise<void> {
    let level: LoggingLevel | undefined;
    for (const l of this.levels.values()) if (level === undefined || (LOG_SEVERITY.get(l) ?? 0) < (LOG_SEVERITY.get(level) ?? 0)) level = l;
    // With no session asking any more, upstreams keep the last level (the protocol has no reset).
    if (level === undefined || level === this.upstreamLevel) return;
    this.upstreamLevel = level;
    await Promise.all(this.shared.pool.upstreams.map((u) => u.setLogLevel(level).catch(() => undefined)));
  }
}
