import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { scanToolDefinition, type ToolFinding } from '../engine/screen/tool-scan.ts';
import type { ServerConfig } from './config.ts';
import { listAllPages } from './listing.ts';
import type { TransportFactory, Upstream, UpstreamState } from './upstream.ts';
import { UpstreamPool } from './upstream-pool.ts';

/** One tool of a scanned server and what the tool-definition scan found in it. */
export interface ScannedTool {
  name: string;
  /** `<server>.<tool>`, as policies name it. */
  action: string;
  findings: ToolFinding[];
}

/** A prompt, resource or resource template a server lists, and what the same scan found in it. */
export interface ScannedListing {
  kind: 'prompt' | 'resource' | 'resource template';
  /** The prompt's name, the resource's URI, the template's URI template. */
  name: string;
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
  /** Its prompts, resources and resource templates: a model reads their descriptions too. */
  listings: ScannedListing[];
  /** The lists it offers but failed to give (`prompts/list: …`): those items were not scanned. */
  unlistable: string[];
}

/**
 * `kavach mcp scan`: starts each server once (asking for no client capability: nothing is
 * relayed to or from a client), lists its tools, prompts, resources and resource templates, and
 * scans every definition and the server's instructions. Serves nothing; the upstreams are closed
 * before it returns.
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
    return await Promise.all(
      pool.upstreams.map(async (u): Promise<ServerScan> => {
        if (u.state !== 'ready')
          return { name: u.name, state: u.state, error: u.lastError ?? u.state, instructions: [], tools: [], listings: [], unlistable: [] };
        const { listings, unlistable } = await scanListings(u);
        return {
          name: u.name,
          state: u.state,
          instructions: u.instructions === undefined ? [] : scanToolDefinition({}, u.instructions),
          tools: u.tools.map((t) => ({ name: t.name, action: `${u.name}.${t.name}`, findings: scanToolDefinition(t) })),
          listings,
          unlistable,
        };
      }),
    );
  } finally {
    await pool.close();
  }
}

/** Items a list may hold before the scan stops reading it (as the proxy's own listings do). */
const MAX_LISTED = 50_000;

/**
 * A server's prompts, resources and resource templates, as it lists them (before the proxy's
 * listing screen withholds anything), each scanned like a tool definition.
 */
async function scanListings(u: Upstream): Promise<{ listings: ScannedListing[]; unlistable: string[] }> {
  const client = u.client;
  const offers = client?.getServerCapabilities();
  const listings: ScannedListing[] = [];
  const unlistable: string[] = [];
  if (!client) return { listings, unlistable };
  const scan = async <T extends object>(
    kind: ScannedListing['kind'],
    method: string,
    page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string }>,
    nameOf: (item: T) => string,
  ): Promise<void> => {
    try {
      for (const item of await listAllPages(page, MAX_LISTED))
        listings.push({ kind, name: nameOf(item), findings: scanToolDefinition(item) });
    } catch (err) {
      unlistable.push(`${method}: ${(err as Error).message}`);
    }
  };
  const at = (cursor: string | undefined) => (cursor === undefined ? {} : { cursor });
  if (offers?.prompts)
    await scan(
      'prompt',
      'prompts/list',
      (c) => client.listPrompts(at(c)).then((p) => ({ items: p.prompts, nextCursor: p.nextCursor })),
      (p) => p.name,
    );
  if (offers?.resources) {
    await scan(
      'resource',
      'resources/list',
      (c) => client.listResources(at(c)).then((p) => ({ items: p.resources, nextCursor: p.nextCursor })),
      (r) => r.uri,
    );
    await scan(
      'resource template',
      'resources/templates/list',
      (c) => client.listResourceTemplates(at(c)).then((p) => ({ items: p.resourceTemplates, nextCursor: p.nextCursor })),
      (t) => t.uriTemplate,
    );
  }
  return { listings, unlistable };
}
