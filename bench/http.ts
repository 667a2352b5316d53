/**
 * Streamable HTTP gateways in front of one stdio MCP server (server-everything's `echo`), side by
 * side in one run: the floor (a plain node:http server that forwards each POSTed message as a
 * line to the server and answers its line back, with nothing else), `kavach mcp --http` (gate on,
 * signing and audit off, drift off), supergateway (`--stateful`) and mcp-proxy. The client is the
 * SDK's Streamable HTTP transport, 1, 10 and 50 clients at once, each making calls back to back.
 * Variants are interleaved within each repetition (the machine's load hits them alike); each
 * figure is the min / median / max of the repetitions. "added p50" is a call's median latency
 * through the gateway less the same call made directly over stdio (measured in the same run).
 *
 *   npm run build && npx tsx bench/http.ts [--reps 3] [--clients 1,10,50] [--calls 300] [--warmup 1000] [--only floor,kavach,supergateway,mcp-proxy]
 *
 * `--warmup N`: calls each gateway (and the direct connection) gets, one client, before the first
 * repetition; each round's fresh sessions are then warmed with 300 calls (20 per client at 50).
 *
 * With `--serve-floor PORT` this file is itself the floor.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import './util.ts'; // warns when dist/ is older than src/

const REPO = resolve(import.meta.dirname, '..');
const EVERYTHING = join(REPO, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const KAVACH = join(REPO, 'bench/kavach-dist.mjs');
const TOKEN = 'bench-token-0123456789abcdef';
const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : fallback;
};

/** The floor: POST body → one line to the server (id swapped for a unique one) → its answer line back as JSON. */
async function serveFloor(port: number): Promise<void> {
  const child = spawn(process.execPath, [EVERYTHING, 'stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const waiting = new Map<number, { res: import('node:http').ServerResponse; id: unknown }>();
  let seq = 0;
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
      const message = JSON.parse(line) as { id?: number };
      const to = message.id === undefined ? undefined : waiting.get(message.id);
      if (!to) continue;
      waiting.delete(message.id as number);
      message.id = to.id as number;
      const body = JSON.stringify(message);
      to.res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'floor', 'content-length': Buffer.byteLength(body) });
      to.res.end(body);
    }
  });
  const read = (req: IncomingMessage) =>
    new Promise<string>((done) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
    });
  createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
      return;
    }
    void read(req).then((text) => {
      const message = JSON.parse(text) as { id?: unknown };
      if (message.id === undefined) {
        child.stdin.write(`${text}\n`);
        res.writeHead(202).end();
        return;
      }
      const id = ++seq;
      waiting.set(id, { res, id: message.id });
      message.id = id;
      child.stdin.write(`${JSON.stringify(message)}\n`);
    });
  }).listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    child.kill();
    process.exit(0);
  });
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createNetServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

interface Gateway {
  name: string;
  what: string;
  url: string;
  tool: string;
  headers: Record<string, string>;
  child: ChildProcess;
}

async function startGateway(name: string, dir: string): Promise<Gateway> {
  const port = await freePort();
  const node = process.execPath;
  const quiet = process.env.BENCH_DEBUG ? 'inherit' : 'ignore';
  const spawnIt = (args: string[]) => spawn(node, args, { cwd: REPO, stdio: ['ignore', quiet, quiet] });
  const url = `http://127.0.0.1:${port}/mcp`;
  let g: Omit<Gateway, 'child'> & { args: string[] };
  if (name === 'floor') {
    g = {
      name,
      what: 'plain node:http, lines to the server',
      url,
      tool: 'echo',
      headers: {},
      args: ['--import', 'tsx', join(REPO, 'bench/http.ts'), '--serve-floor', String(port)],
    };
  } else if (name === 'kavach') {
    const config = join(dir, 'kavach.toml');
    writeFileSync(
      config,
      `[gate]\npolicy = "policy.toml"\n[tools]\npinning = false\n[drift]\nenabled = false\n[servers.everything]\ncommand = ${JSON.stringify(node)}\nargs = [${JSON.stringify(EVERYTHING)}, "stdio"]\n[http]\n[[http.clients]]\ntoken = "${TOKEN}"\nprincipal_id = "bench"\nprincipal_kind = "service"\n`,
    );
    writeFileSync(
      join(dir, 'policy.toml'),
      '[[policy]]\nname = "echo"\neffect = "permit"\nconditions = [{ action = "everything.echo" }]\n',
    );
    g = {
      name,
      what: 'gate on; signing, audit, drift off',
      url,
      tool: 'everything__echo',
      headers: { authorization: `Bearer ${TOKEN}` },
      // BENCH_CPU_PROF=DIR: the kavach process writes a V8 CPU profile there on exit;
      // BENCH_NODE_FLAGS: more node flags for it.
      args: [
        ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
        ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
        KAVACH,
        'mcp',
        '--config',
        config,
        '--http',
        `127.0.0.1:${port}`,
      ],
    };
  } else if (name === 'supergateway') {
    g = {
      name,
      what: '--stateful, streamableHttp',
      url,
      tool: 'echo',
      headers: {},
      args: [
        join(REPO, 'node_modules/supergateway/dist/index.js'),
        '--stdio',
        `${JSON.stringify(node)} ${JSON.stringify(EVERYTHING)} stdio`,
        '--outputTransport',
        'streamableHttp',
        '--stateful',
        '--port',
        String(port),
        '--logLevel',
        'none',
      ],
    };
  } else if (name === 'mcp-proxy') {
    g = {
      name,
      what: 'stream endpoint, no event store',
      url,
      tool: 'echo',
      headers: {},
      args: [
        join(REPO, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs'),
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--server',
        'stream',
        '--no-eventStore',
        '--',
        node,
        EVERYTHING,
        'stdio',
      ],
    };
  } else throw new Error(`unknown variant ${name}`);
  const child = spawnIt(g.args);
  const gateway = { name: g.name, what: g.what, url: g.url, tool: g.tool, headers: g.headers, child };
  // Ready when a client can connect and call.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const c = await connect(gateway);
      await callOnce(c, gateway.tool, 0);
      await disconnect(c);
      return gateway;
    } catch (err) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not come up: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

interface Conn {
  client: Client;
  transport: StreamableHTTPClientTransport | StdioClientTransport;
}

async function connect(g: Pick<Gateway, 'url' | 'headers'>): Promise<Conn> {
  const transport = new StreamableHTTPClientTransport(new URL(g.url), { requestInit: { headers: g.headers } });
  const client = new Client({ name: 'bench-http', version: '1' });
  await client.connect(transport, { timeout: 30_000 });
  return { client, transport };
}

async function disconnect(c: Conn): Promise<void> {
  if (c.transport instanceof StreamableHTTPClientTransport) await c.transport.terminateSession().catch(() => undefined);
  await c.client.close().catch(() => undefined);
}

async function callOnce(c: Conn, tool: string, i: number): Promise<number> {
  const t0 = performance.now();
  const result = await c.client.request(
    { method: 'tools/call', params: { name: tool, arguments: { message: `m${i}` } } },
    CallToolResultSchema,
  );
  const dt = performance.now() - t0;
  if (result.isError || (result.content[0] as { text?: string })?.text !== `Echo: m${i}`)
    throw new Error(`unexpected answer: ${JSON.stringify(result).slice(0, 200)}`);
  return dt;
}

/** `clients` clients making `total` calls between them as fast as each gets its answers. */
async function load(conns: Conn[], tool: string, total: number): Promise<{ p50: number; perSecond: number }> {
  const samples: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    conns.map(async (c) => {
      while (next < total) samples.push(await callOnce(c, tool, next++));
    }),
  );
  const wall = performance.now() - t0;
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length / 2)] as number, perSecond: (samples.length / wall) * 1000 };
}

/** CPU time (user+system, µs) a process has used, from /proc (Linux); robust where wall time is not. */
function cpuOf(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6;
  } catch {
    return undefined;
  }
}

const spread = (xs: number[], f: (x: number) => string) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${f(s[Math.floor(s.length / 2)] as number)} (${f(s[0] as number)}–${f(s[s.length - 1] as number)})`;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const reps = Number(flag('reps', '3'));
  const WARMUP_CALLS = Number(flag('warmup', '1000'));
  /** Calls on each round's fresh sessions before it is measured (a new session's first calls run slower everywhere). */
  const ROUND_WARMUP = 300;
  const counts = flag('clients', '1,10,50').split(',').map(Number);
  const callsPerClient = Number(flag('calls', '300'));
  const only = flag('only', 'floor,kavach,supergateway,mcp-proxy').split(',').filter(Boolean);
  const dir = mkdtempSync(join(tmpdir(), 'kavach-bench-http-'));
  const gateways: Gateway[] = [];
  // results[variant][clients] = per repetition
  const p50s = new Map<string, number[]>();
  const rates = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const direct: number[] = [];
  const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
  process.stdout.write(
    `\nStreamable HTTP gateways, echo tool of server-everything over stdio, SDK client; ${reps} repetitions, interleaved; node ${process.version}, ${cpus().length} cpus, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  try {
    for (const name of only) gateways.push(await startGateway(name, dir));
    const stdio = new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' });
    const directClient = new Client({ name: 'bench-direct', version: '1' });
    await directClient.connect(stdio);
    const directConn: Conn = { client: directClient, transport: stdio };
    // Every gateway (and the direct connection) is first warmed up alike, so the first repetition
    // measures code the JIT has settled, as a gateway serving for a while runs, not a cold start.
    await load([directConn], 'echo', WARMUP_CALLS);
    for (const g of gateways) {
      const conns = [await connect(g)];
      try {
        await load(conns, g.tool, WARMUP_CALLS);
      } finally {
        await Promise.all(conns.map(disconnect));
      }
    }
    for (let rep = 0; rep < reps; rep++) {
      await load([directConn], 'echo', 50);
      direct.push((await load([directConn], 'echo', callsPerClient)).p50);
      for (const clients of counts) {
        // A different order each repetition, so no variant always runs first.
        const order = gateways.map((_, i) => gateways[(i + rep) % gateways.length] as Gateway);
        for (const g of order) {
          const conns = await Promise.all(Array.from({ length: clients }, () => connect(g)));
          try {
            await load(conns, g.tool, Math.max(ROUND_WARMUP, clients * 20));
            const total = callsPerClient * Math.min(clients, 10);
            const before = cpuOf(g.child.pid);
            const r = await load(conns, g.tool, total);
            const after = cpuOf(g.child.pid);
            push(p50s, `${g.name}/${clients}`, r.p50);
            push(rates, `${g.name}/${clients}`, r.perSecond);
            if (before !== undefined && after !== undefined) push(cpu, `${g.name}/${clients}`, (after - before) / total);
            process.stderr.write(`rep ${rep + 1} ${g.name} ×${clients}: p50 ${r.p50.toFixed(2)} ms, ${r.perSecond.toFixed(0)} calls/s\n`);
          } finally {
            await Promise.all(conns.map(disconnect));
          }
        }
      }
    }
    await directClient.close();
  } finally {
    for (const g of gateways) g.child.kill();
    rmSync(dir, { recursive: true, force: true });
  }

  const directP50 = median(direct);
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const rate = (x: number) => x.toFixed(0);
  process.stdout.write(`\ndirect over stdio (SDK client → server-everything), p50: ${spread(direct, ms)}\n\n`);
  process.stdout.write(
    '| gateway | what | clients | added p50 (median, min–max) | ×floor | calls/s (median, min–max) | ×floor | gateway CPU per call | ×floor |\n|---|---|---|---|---|---|---|---|---|\n',
  );
  for (const clients of counts) {
    const floorAdded = p50s.has(`floor/${clients}`) ? median(p50s.get(`floor/${clients}`) as number[]) - directP50 : undefined;
    const floorRate = rates.has(`floor/${clients}`) ? median(rates.get(`floor/${clients}`) as number[]) : undefined;
    for (const g of gateways) {
      const key = `${g.name}/${clients}`;
      const added = (p50s.get(key) ?? []).map((p) => p - directP50);
      const perSecond = rates.get(key) ?? [];
      const xAdded = floorAdded ? `${(median(added) / floorAdded).toFixed(2)}×` : '–';
      const xRate = floorRate ? `${(median(perSecond) / floorRate).toFixed(2)}×` : '–';
      const used = cpu.get(key) ?? [];
      const floorCpu = cpu.has(`floor/${clients}`) ? median(cpu.get(`floor/${clients}`) as number[]) : undefined;
      const xCpu = floorCpu && used.length > 0 ? `${(median(used) / floorCpu).toFixed(2)}×` : '–';
      const cpuText = used.length > 0 ? `${median(used).toFixed(0)} µs` : '–';
      process.stdout.write(
        `| ${g.name} | ${g.what} | ${clients} | ${spread(added, ms)} | ${xAdded} | ${spread(perSecond, rate)} | ${xRate} | ${cpuText} | ${xCpu} |\n`,
      );
    }
  }
}

if (argv.includes('--serve-floor')) await serveFloor(Number(flag('serve-floor', '0')));
else await main();
