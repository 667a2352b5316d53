import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { scanToolDefinition, type ToolFinding } from '../engine/screen/tool-scan.ts';
import type { ServerConfig } from './config.ts';
import type { TransportFactory, UpstreamState } from './upstream.ts';
import { UpstreamPool } from './upstream-pool.ts';

/** One tool of a scanned server and what the tool-definition scan found in it. */
export interface ScannedTool {
  name: string;
  /** `<server>.<tool>`, as policies name it. */
  action: string;
  findings: ToolFinding[];
}

/** One configured server, scanned (or why it could not be). */
export interface ServerScan {
  name: string;
  state: UpstreamState;
  /** Why it could not be listed (it is then not scanned). */
  error?: string;
  /** Findings in the server's `instructions` (reported once here, not with each tool). */
  instructions: ToolFinding[];
  tools: ScannedTool[];
}

/**
 * `kavach mcp scan`: starts each server once (asking for no client capability: nothing is
 * relayed to or from a client), lists its tools, and scans every definition and the server's
 * instructions. Serves nothing; the upstreams are closed before it returns.
 */
export async function scanServers(
  servers: readonly ServerConfig[],
  opts: { log: (message: string) => void; transportFor?: TransportFactory },
): Promise<ServerScan[]> {
  const pool = new UpstreamPool(
    servers,
    {
      log: opts.log,
      changed: () => undefined,
      logMessage: () => undefined,
      resourceUpdated: () => undefined,
      status: () => undefined,
      relay: () => Promise.reject(new Error('kavach mcp scan answers no server request')),
    },
    opts.transportFor,
  );
  const none: ClientCapabilities = {};
  try {
    pool.start(none);
    // Each first attempt, however long it takes (a server fetched by npx): not the proxy's startup bound.
    await Promise.all(pool.upstreams.map((u) => u.settled));
    return pool.upstreams.map((u): ServerScan => {
      if (u.state !== 'ready') return { name: u.name, state: u.state, error: u.lastError ?? u.state, instructions: [], tools: [] };
      return {
        name: u.name,
        state: u.state,
        instructions: u.instructions === undefined ? [] : scanToolDefinition({}, u.instructions),
        tools: u.tools.map((t) => ({ name: t.name, action: `${u.name}.${t.name}`, findings: scanToolDefinition(t) })),
      };
    });
  } finally {
    await pool.close();
  }
}
