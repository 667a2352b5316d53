/**
 * Added latency per MCP `tools/call` through `kavach mcp`: server-everything's `echo` reached
 * directly over stdio, through a C program that only copies bytes (the floor of one stdio hop on
 * this machine; compiled from bench/relay/relay.c when `cc` is installed), through a Node process
 * that only copies bytes (the floor for any proxy written in Node), through a pass-through proxy built on the same SDK without a gate, and
 * through kavach with signing and audit off and on. Calls are interleaved round-robin across the
 * variants so machine noise (2 shared cores) hits them all alike. Drift detection is off (a
 * benchmark is a burst far above any per-minute threshold); the session store is still consulted.
 *
 *   npx tsx bench/proxy.ts [--calls 2000] [--warmup 300] [--only direct,relay-c,bytecopy,parsefloor,passthrough,kavach] [--message-bytes 250000]
 *
 * `--message-bytes N` echoes a message of N bytes (the answer is as large): what a large tool
 * result costs each hop.
 *
 * With `--serve-passthrough` (`--serve-bytecopy`, `--serve-parsefloor`) this file is itself the
 * pass-through (byte-copying, parsing) proxy. BENCH_CPU_PROF=DIR makes each kavach process write
 * a V8 CPU profile there; BENCH_NODE_FLAGS adds node flags to them (`--perf-basic-prof` for `perf`).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, CallToolResultSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import './util.ts'; // warns when dist/ is older than src/

const REPO = resolve(import.meta.dirname, '..');
const EVERYTHING = join(REPO, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
/** The built command (dist/), run by plain node: what users run, not src/ through tsx. */
const KAVACH = join(REPO, 'bench/kavach-dist.mjs');
/**
 * KAVACH_BASELINE=<another checkout>/bench/kavach-dist.mjs adds that build as 'baseline' beside
 * kavach in round 1: a change measured against the code before it, in one run.
 */
const BASELINE = process.env.KAVACH_BASELINE ?? '';
const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : fallback;
};

/** The floor: a process that only copies bytes both ways (what any stdio hop costs here). */
async function serveBytecopy(): Promise<void> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [EVERYTHING, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  process.stdin.on('data', (chunk: Buffer) => child.stdin.write(chunk));
  child.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk));
  process.stdin.on('end', () => child.kill());
  child.on('close', () => process.exit(0));
}

/**
 * The floor of a gate: it cannot forward a request before it has read all of it and parsed its
 * arguments. Requests are framed into lines, decoded and JSON.parsed, then written on as read;
 * answers are copied as bytes (what a gate with nothing to check in them could do).
 */
async function serveParseFloor(): Promise<void> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [EVERYTHING, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  let parts: Buffer[] = [];
  process.stdin.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      parts.push(chunk.subarray(start, nl + 1));
      const line = Buffer.concat(parts).toString('utf8');
      parts = [];
      JSON.parse(line);
      child.stdin.write(line);
      start = nl + 1;
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  });
  child.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk));
  process.stdin.on('end', () => child.kill());
  child.on('close', () => process.exit(0));
}

/** The baseline: the least a proxy on this SDK does (a Client upstream, a Server downstream). */
async function servePassthrough(): Promise<void> {
  const upstream = new Client({ name: 'passthrough', version: '1' });
  await upstream.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' }));
  const server = new Server({ name: 'passthrough', version: '1' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => upstream.listTools());
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) =>
    upstream.request({ method: 'tools/call', params: request.params }, CallToolResultSchema, { signal: extra.signal }),
  );
  server.onclose = () => void upstream.close().then(() => process.exit(0));
  await server.connect(new StdioServerTransport());
}

interface Variant {
  name: string;
  /** CPU time (user+system, µs) the process in the middle spent per call; robust under load. */
  cpuPerCallUs?: number;
  /** The kernel's share of it (pipe reads and writes, wake-ups). */
  sysPerCallUs?: number;
  note: string;
  client: Client;
  transport: StdioClientTransport;
  tool: string;
  samples: number[];
}

async function connect(name: string, note: string, command: string, args: string[], tool: string): Promise<Variant> {
  const transport = new StdioClientTransport({ command, args, cwd: REPO, stderr: process.env.BENCH_DEBUG ? 'inherit' : 'ignore' });
  const client = new Client({ name: `bench-${name}`, version: '1' });
  await client.connect(transport, { timeout: 60_000 });
  const { tools } = await client.listTools();
  if (!tools.some((t) => t.name === tool)) throw new Error(`${name}: no tool ${tool} (has ${tools.map((t) => t.name).join(', ')})`);
  return { name, note, client, transport, tool, samples: [] };
}

const MESSAGE_BYTES = Number(flag('message-bytes', '0'));
/** A message of MESSAGE_BYTES bytes, different per call (no layer may cache it). */
const PADDING = 'x'.repeat(Math.max(0, MESSAGE_BYTES - 12));
const messageFor = (i: number): string => (MESSAGE_BYTES > 0 ? `m${String(i).padStart(10, '0')} ${PADDING}` : `m${i}`);

async function callOnce(v: Variant, i: number): Promise<number> {
  const message = messageFor(i);
  const t0 = performance.now();
  const result = await v.client.request({ method: 'tools/call', params: { name: v.tool, arguments: { message } } }, CallToolResultSchema);
  const dt = performance.now() - t0;
  if (result.isError) throw new Error(`${v.name}: ${JSON.stringify(result.content)}`);
  if ((result.content[0] as { text?: string } | undefined)?.text !== `Echo: ${message}`) throw new Error(`${v.name}: a wrong answer`);
  return dt;
}

/** utime and stime of a process in µs, from /proc (Linux); undefined elsewhere. */
function cpuOf(pid: number | null): { user: number; sys: number } | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: (Number(fields[11]) / 100) * 1e6, sys: (Number(fields[12]) / 100) * 1e6 };
  } catch {
    return undefined;
  }
}

/** bench/relay/relay.c built into `dir` with the system's `cc`; '' when there is no compiler. */
function compileRelay(dir: string): string {
  const out = join(dir, 'relay');
  if (existsSync(out)) return out;
  const cc = spawnSync('cc', ['-O2', '-o', out, join(REPO, 'bench/relay/relay.c')], { encoding: 'utf8' });
  return cc.status === 0 ? out : '';
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function main(): Promise<void> {
  const calls = Number(flag('calls', '2000'));
  const warmup = Number(flag('warmup', '300'));
  const only = flag('only', '').split(',').filter(Boolean);
  const dir = mkdtempSync(join(tmpdir(), 'kavach-bench-proxy-'));
  const keygen = spawnSync(process.execPath, [KAVACH, 'keygen', '--out', join(dir, 'keys')], { encoding: 'utf8' });
  if (keygen.status !== 0) throw new Error(`keygen failed: ${keygen.stderr}`);
  writeFileSync(join(dir, 'policy.toml'), '[[policy]]\nname = "echo"\neffect = "permit"\nconditions = [{ action = "everything.echo" }]\n');
  const config = (extra: string) => {
    const path = join(dir, `kavach-${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(
      path,
      `[gate]\npolicy = "policy.toml"\n[identity]\nprincipal_id = "bench"\nprincipal_kind = "agent"\n[tools]\npinning = false\n[drift]\nenabled = false\n${extra}\n[servers.everything]\ncommand = ${JSON.stringify(process.execPath)}\nargs = [${JSON.stringify(EVERYTHING)}, "stdio"]\n`,
    );
    return path;
  };
  // BENCH_CPU_PROF=DIR: each kavach process writes a V8 CPU profile there on exit.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  // BENCH_NODE_FLAGS="--perf-basic-prof ...": node flags for the kavach processes (the SDK's
  // stdio client does not pass NODE_OPTIONS on).
  const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const kavach = (extra: string, build = KAVACH) => [...prof, ...nodeFlags, build, 'mcp', '--config', config(extra)];
  const keys = `[keys]\npath = "keys/secret.key"\nmode = "hybrid"\n`;

  const specs: [string, string, () => Promise<Variant>][] = [
    ['direct', 'SDK client → server-everything', () => connect('direct', '', process.execPath, [EVERYTHING, 'stdio'], 'echo')],
    [
      'relay-c',
      'C, copies bytes (floor of a stdio hop)',
      () => connect('relay-c', '', compileRelay(dir), [process.execPath, EVERYTHING, 'stdio'], 'echo'),
    ],
    [
      'bytecopy',
      'Node, copies bytes (floor in Node)',
      () => connect('bytecopy', '', process.execPath, ['--import', 'tsx', join(REPO, 'bench/proxy.ts'), '--serve-bytecopy'], 'echo'),
    ],
    [
      'parsefloor',
      'Node, reads and parses each request (floor of a gate)',
      () => connect('parsefloor', '', process.execPath, ['--import', 'tsx', join(REPO, 'bench/proxy.ts'), '--serve-parsefloor'], 'echo'),
    ],
    [
      'passthrough',
      'same SDK, no gate',
      () => connect('passthrough', '', process.execPath, ['--import', 'tsx', join(REPO, 'bench/proxy.ts'), '--serve-passthrough'], 'echo'),
    ],
    ['kavach', 'gate; signing off, audit off', () => connect('kavach', '', process.execPath, kavach(''), 'everything__echo')],
    [
      'baseline',
      `as kavach, built from ${BASELINE}`,
      () => connect('baseline', '', process.execPath, kavach('', BASELINE), 'everything__echo'),
    ],
    [
      'kavach+sign',
      'hybrid ML-DSA-65 + Ed25519 permit',
      () => connect('kavach+sign', '', process.execPath, kavach(keys), 'everything__echo'),
    ],
    [
      'kavach+audit',
      'durable audit record, no permit',
      () =>
        connect(
          'kavach+audit',
          '',
          process.execPath,
          kavach(`[keys]\npath = "keys/secret.key"\nsign_permits = false\n[audit]\npath = "audit-only-${Date.now()}.jsonl"\n`),
          'everything__echo',
        ),
    ],
    [
      'kavach+sign+audit',
      'permit + durable audit record',
      () =>
        connect(
          'kavach+sign+audit',
          '',
          process.execPath,
          kavach(`${keys}[audit]\npath = "audit-${Date.now()}.jsonl"\n`),
          'everything__echo',
        ),
    ],
  ];
  // Two rounds: signing burns milliseconds of CPU per call, which on a small machine would
  // starve the latency-sensitive variants if they ran side by side.
  const rounds = [
    [
      'direct',
      ...(compileRelay(dir) ? ['relay-c'] : []),
      'bytecopy',
      'parsefloor',
      'passthrough',
      'kavach',
      ...(BASELINE ? ['baseline'] : []),
    ],
    ['kavach', 'kavach+sign', 'kavach+audit', 'kavach+sign+audit'],
  ]
    .map((round) => round.filter((name) => only.length === 0 || only.includes(name)))
    .filter((round) => round.length > 0);
  process.stdout.write(
    `\nMCP tools/call latency, echo tool${MESSAGE_BYTES > 0 ? ` (${MESSAGE_BYTES}-byte message and result)` : ''}, ${calls} calls per variant (interleaved within a round), node ${process.version}, ${cpus().length} cpus, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n\n`,
  );
  process.stdout.write(
    '| round | variant | what | p50 | p99 | added p50 vs direct | added p99 vs direct | added p50 vs pass-through | proxy CPU per call |\n|---|---|---|---|---|---|---|---|---|\n',
  );
  const results = new Map<string, { p50: number; p99: number }>();
  try {
    for (const [index, round] of rounds.entries()) {
      const variants: Variant[] = [];
      try {
        for (const name of round) {
          const spec = specs.find(([n]) => n === name);
          if (!spec) continue;
          const v = await spec[2]();
          v.note = spec[1];
          variants.push(v);
        }
        for (let i = 0; i < warmup; i++) for (const v of variants) await callOnce(v, i);
        const cpuBefore = variants.map((v) => cpuOf(v.transport.pid));
        for (let i = 0; i < calls; i++) for (const v of variants) v.samples.push(await callOnce(v, i));
        variants.forEach((v, k) => {
          const before = cpuBefore[k];
          const after = cpuOf(v.transport.pid);
          if (v.name !== 'direct' && before !== undefined && after !== undefined) {
            v.cpuPerCallUs = (after.user + after.sys - before.user - before.sys) / calls;
            v.sysPerCallUs = (after.sys - before.sys) / calls;
          }
        });
        const rows = variants.map((v) => {
          const sorted = [...v.samples].sort((a, b) => a - b);
          return { v, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
        });
        // Within a round, compare with that round's own baselines (the machine's load changes).
        const base = rows.find((r) => r.v.name === 'direct') ?? results.get('direct');
        const pass = rows.find((r) => r.v.name === 'passthrough') ?? results.get('passthrough');
        const plain = rows.find((r) => r.v.name === 'kavach');
        const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;
        for (const r of rows) {
          results.set(r.v.name, r);
          const cpu =
            r.v.cpuPerCallUs !== undefined ? `${r.v.cpuPerCallUs.toFixed(0)} µs (sys ${(r.v.sysPerCallUs ?? 0).toFixed(0)})` : '–';
          const vsDirect = (which: 'p50' | 'p99') => (base && index === 0 ? us(r[which] - base[which]) : '–');
          let vsPass = r.v.name.startsWith('kavach') && pass && index === 0 ? us(r.p50 - pass.p50) : '–';
          if (index > 0 && plain && r.v !== plain.v) vsPass = `${us(r.p50 - plain.p50)} over plain kavach`;
          process.stdout.write(
            `| ${index + 1} | ${r.v.name} | ${r.v.note} | ${us(r.p50)} | ${us(r.p99)} | ${vsDirect('p50')} | ${vsDirect('p99')} | ${vsPass} | ${cpu} |\n`,
          );
        }
        if (index === 0 && base) {
          // The targets are ratios of added latency: kavach's over each floor's, in this run.
          const added = (name: string) => {
            const r = rows.find((x) => x.v.name === name);
            return r && r.p50 - base.p50;
          };
          for (const name of ['kavach', 'baseline']) {
            const mine = added(name);
            if (mine === undefined) continue;
            const ratios = ['bytecopy', 'parsefloor']
              .map((floor) => [floor, added(floor)] as const)
              .filter((x): x is readonly [string, number] => x[1] !== undefined && x[1] > 0)
              .map(([floor, a]) => `${(mine / a).toFixed(2)}x ${floor}'s`);
            if (ratios.length > 0) process.stdout.write(`\n${name}'s added p50: ${ratios.join(', ')}\n`);
          }
          process.stdout.write('\n');
        }
      } finally {
        for (const v of variants) {
          await v.client.close().catch(() => undefined);
          await v.transport.close().catch(() => undefined);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (argv.includes('--serve-passthrough')) await servePassthrough();
else if (argv.includes('--serve-bytecopy')) await serveBytecopy();
else if (argv.includes('--serve-parsefloor')) await serveParseFloor();
else await main();
