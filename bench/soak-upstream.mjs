#!/usr/bin/env node
// The upstream MCP server of bench/soak.ts: a ledger whose `append` is the write the soak watches.
// Every call it runs is noted in SOAK_LEDGER (one JSON line: tool, call id, the permit's jti, time)
// together with whether the permit's audit record was already in the audit log file (SOAK_AUDIT)
// when the call ran: "a permit record before the write" checked at the moment of the write, not
// afterwards. Plain JS so it starts fast after each SIGKILL.
import { appendFileSync, closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const LEDGER = process.env.SOAK_LEDGER;
const AUDIT = process.env.SOAK_AUDIT;
if (!LEDGER || !AUDIT) throw new Error('soak-upstream needs SOAK_LEDGER and SOAK_AUDIT');

/** The jti of a `kv1.<claims>.<signatures>` permit, or undefined when none came with the call. */
function permitJti(meta) {
  const token = meta?.['dev.kavach/permit'];
  if (typeof token !== 'string') return undefined;
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).jti;
  } catch {
    return 'unreadable';
  }
}

/** The last `bytes` of a file ('' when it is missing). */
function tail(path, bytes) {
  if (!existsSync(path)) return '';
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, bytes);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Whether the audit log (its active file, else its newest rotated segment) holds the permit's record. */
function permitRecorded(jti) {
  const needle = `"permit":"${jti}"`;
  // The record was appended just before the call was forwarded: the tail almost always has it.
  if (tail(AUDIT, 1 << 20).includes(needle)) return true;
  if (existsSync(AUDIT) && readFileSync(AUDIT, 'utf8').includes(needle)) return true;
  if (!existsSync(dirname(AUDIT))) return false;
  const segments = readdirSync(dirname(AUDIT))
    .filter((f) => f.startsWith(`${basename(AUDIT)}.`) && /\.\d{6}$/.test(f))
    .sort();
  const newest = segments.at(-1);
  return newest !== undefined && readFileSync(join(dirname(AUDIT), newest), 'utf8').includes(needle);
}

function note(tool, call, meta, extra = {}) {
  const jti = permitJti(meta);
  const recorded = jti !== undefined && jti !== 'unreadable' && permitRecorded(jti);
  appendFileSync(LEDGER, `${JSON.stringify({ tool, call, jti: jti ?? null, recorded, at: Date.now(), pid: process.pid, ...extra })}\n`);
}

const server = new McpServer({ name: 'soak-ledger', version: '1.0.0' });
const text = (t) => ({ content: [{ type: 'text', text: t }] });

server.registerTool(
  'append',
  { description: 'appends a line to the ledger (the write the soak checks)', inputSchema: { call: z.string(), text: z.string() } },
  async ({ call, text: body }, extra) => {
    note('append', call, extra._meta, { bytes: body.length });
    return text(`appended ${call}`);
  },
);

server.registerTool(
  'echo',
  { description: 'echoes the text', inputSchema: { call: z.string(), text: z.string() } },
  async ({ call, text: body }, extra) => {
    note('echo', call, extra._meta);
    return text(body);
  },
);

server.registerTool(
  'blob',
  { description: 'answers `bytes` characters of text', inputSchema: { call: z.string(), bytes: z.number().int().positive() } },
  async ({ call, bytes }, extra) => {
    note('blob', call, extra._meta, { bytes });
    return text('x'.repeat(bytes));
  },
);

// The policy refuses this tool: a line for it in the ledger is a call that ran without a permit.
server.registerTool(
  'forbidden',
  { description: 'the policy refuses every call', inputSchema: { call: z.string() } },
  async ({ call }, extra) => {
    note('forbidden', call, extra._meta);
    return text('ran');
  },
);

// Killed with the proxy: a parent that is gone closes stdin.
process.stdin.on('end', () => process.exit(0));
await server.connect(new StdioServerTransport());
