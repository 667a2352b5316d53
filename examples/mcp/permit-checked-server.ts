#!/usr/bin/env node
/**
 * An MCP server whose tools run only with a Kavach permit: put it behind `kavach mcp` with
 * [keys] configured, and a call that did not pass the gate (or whose arguments were changed on
 * the way, or whose permit was replayed) never reaches the handler.
 *
 *   node --import tsx examples/mcp/permit-checked-server.ts --keys keys/public.json --audience notes
 *
 * `--audience` is this server's name in the proxy config (`[servers.notes]`).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import { PermitVerifier, PublicKeyDirectory } from '../../src/crypto/index.ts';
import { requirePermit } from '../../src/mcp-proxy/index.ts';

function flag(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? process.argv[i + 1] : undefined;
  if (!value) {
    process.stderr.write(`usage: permit-checked-server --keys public.json --audience NAME [--mode hybrid|pq]\n`);
    process.exit(2);
  }
  return value;
}

const audience = flag('audience');
const mode = process.argv.includes('--mode') ? (flag('mode') as 'hybrid' | 'pq') : 'hybrid';
const verifier = new PermitVerifier({
  keys: PublicKeyDirectory.fromFile(flag('keys')),
  mode,
  audience,
  // Each permit runs one call: a captured token cannot be replayed.
  replay: new InMemoryReplayStore(),
});

const notes = new Map<string, string>();
const server = new McpServer({ name: 'permit-checked-notes', version: '1.0.0' });
const refused = (err: Error) => process.stderr.write(`permit refused: ${err.message}\n`);

server.registerTool(
  'add_note',
  {
    description: 'Stores a note under a title.',
    inputSchema: { title: z.string(), text: z.string() },
  },
  requirePermit(
    async ({ title, text }, extra) => {
      notes.set(title, text);
      return { content: [{ type: 'text', text: `stored "${title}" for ${extra.permit.sub} (permit ${extra.permit.jti})` }] };
    },
    { verifier, audience, tool: 'add_note', onRefused: refused },
  ),
);

server.registerTool(
  'read_note',
  {
    description: 'Reads a note by title.',
    inputSchema: { title: z.string() },
  },
  requirePermit(
    async ({ title }) => ({
      content: [{ type: 'text', text: notes.get(title) ?? `no note titled "${title}"` }],
    }),
    { verifier, audience, tool: 'read_note', onRefused: refused },
  ),
);

await server.connect(new StdioServerTransport());
process.stderr.write(`permit-checked-notes: serving as "${audience}" (${mode} permits)\n`);
