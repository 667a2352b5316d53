import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Gate } from '../engine/gate.ts';
import type { PrincipalConfig, ProxyConfig } from './config.ts';
import type { ProxyTelemetry } from './telemetry.ts';
import type { OutcomeSink } from './tool-calls.ts';
import type { UpstreamPool } from './upstream-pool.ts';

/** A downstream client connection (stdio: the one; HTTP: one per MCP session). */
export interface ProxySession {
  id: string;
  principal: PrincipalConfig;
  server: Server;
  /** HTTP: the client's address (for `ip_in` and drift): where the session opened, or, per request, where that request came from. */
  ip?: string;
  /** How the client is connected, for telemetry: `pipe` (stdio, the default) or `tcp` (Streamable HTTP). */
  transport?: 'pipe' | 'tcp';
}

/**
 * What the proxy's parts share (`ProxyCore` is it). Read on each use, not copied: the gate can
 * be replaced and sessions come and go.
 */
export interface ProxyShared {
  readonly config: ProxyConfig;
  readonly gate: Gate;
  readonly pool: UpstreamPool;
  readonly sessions: ReadonlySet<ProxySession>;
  readonly log: (message: string) => void;
  /** The proxy's own audit records, with `[audit]`. */
  readonly outcomes?: OutcomeSink | undefined;
  /** Spans and metrics per request, when `[telemetry]` is configured (DESIGN §12). */
  readonly telemetry?: ProxyTelemetry | undefined;
}
