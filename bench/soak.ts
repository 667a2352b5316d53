/**
 * Soak and fault run against `kavach mcp --http` (issue #21): N clients with session churn call a
 * ledger fixture (bench/soak-upstream.mjs, whose `append` is the write watched) and
 * server-filesystem for D minutes, through the built proxy as a real process, with the SDK's real
 * Streamable HTTP client, while:
 *
 * - an upstream is SIGKILLed every `--kill-every` seconds (the ledger and the filesystem in turn);
 * - a Redis of its own (started here on a free port, in a temp dir; never the shared 6379) is
 *   stopped (SIGSTOP) for a while, and later SIGKILLed and started again;
 * - the proxy is SIGKILLed mid-load and started again on the same audit log and port;
 * - some calls carry 4–10 MB: results (ledger `blob`, a file read) and requests (a big `append`).
 *
 * Then it checks the invariants, prints a figures table and exits 1 when one broke:
 *
 * 1. the audit log verifies (`kavach audit verify --strict`);
 * 2. every answered call has its records: a refusal its verdict (or the proxy's refusal record),
 *    a permitted call its permit verdict and its outcome;
 * 3. every call an upstream ran came with a permit whose record was already in the audit log file
 *    when it ran (the ledger checks at that moment), and nothing the policy refuses ran;
 * 4. no permit while Redis was unreachable: no call whose permit was evaluated inside an outage
 *    ran before it ended, and no call sent inside one was answered permitted before it ended;
 * 5. every fault was recovered from without restarting the proxy (a later call succeeded), and
 *    the proxy never exited on its own;
 * 6. memory flat: the proxy's live heap (sampled right after a full GC every 5 s) grows by less
 *    than 2 MB/min over the second half of the last proxy process's life (judged on 60 s or more).
 *
 *   npm run bench:soak -- [--minutes 5] [--clients 20] [--kill-every 20] [--think-ms 150] [--big-every 150] [--keep]
 *
 * --big-every N: about one call in N per client carries 4–10 MB. The run's files (audit log,
 * ledger, proxy.log, calls.jsonl, faults.json, memory.jsonl) are kept with --keep or when an
 * invariant broke. Memory is judged from about 3.5 minutes on.
 *
 * Measured, not tested: minutes long, not part of `npm test`. Figures on a shared machine are noisy.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { machine, percentile } from './util.ts'; // also warns when dist/ is older than src/

const REPO = resolve(import.meta.dirname, '..');
/** The built command (dist/), run by plain node: what users run. `npm run bench:soak` builds first. */
const KAVACH = join(REPO, 'bench/kavach-dist.mjs');
const LEDGER_SERVER = join(REPO, 'bench/soak-upstream.mjs');
const MEMORY_PRELOAD = join(REPO, 'bench/soak-memory.mjs');
const FILESYSTEM = join(REPO, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
};
const MINUTES = flag('minutes', 5);
const CLIENTS = Math.round(flag('clients', 20));
const KILL_EVERY_MS = flag('kill-every', 20) * 1000;
const THINK_MS = flag('think-ms', 150);
const BIG_EVERY = Math.round(flag('big-every', 150));
const KEEP = argv.includes('--keep');
const DURATION_MS = MINUTES * 60_000;
/**
 * Principals (one bearer token each); clients share them, as several agents of one service would.
 * Two, so the abandoned sessions reach the proxy's cap per token (32) early in the proxy's second
 * life: memory is judged once what it holds by design has stopped growing.
 */
const PRINCIPALS = 2;
const MB = 1024 * 1024;
/** A verdict evaluated this long after a signal was sent is past the signal's delivery. */
const SIGNAL_GRACE_MS = 100;

const t0 = Date.now();
const since = (t: number) => `${((t - t0) / 1000).toFixed(1)} s`;
const say = (line: string): void => {
  process.stderr.write(`[soak ${since(Date.now())}] ${line}\n`);
};
const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

// ---------------------------------------------------------------------------------------------
// Processes: a Redis of our own, the proxy, its upstreams.

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/** PING over a raw socket: true on +PONG within `ms`. */
function redisPing(port: number, ms = 300): Promise<boolean> {
  return new Promise((res) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(ms, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

class SoakRedis {
  proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const deadline = Date.now() + 10_000;
    while (!(await redisPing(this.port))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING`);
      await sleep(50);
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.kill(sig);
  }

  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await exited;
  }
}

/** Child pids of `pid` (Linux: /proc/PID/task/TID/children). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

class SoakProxy {
  proc: ChildProcess | undefined;
  instances = 0;
  /** Set when we end it: any other exit is the proxy dying on its own (an invariant). */
  private expectedExit = false;
  unexpectedExits: string[] = [];
  /** Spawn to listening, per start. */
  readonly startupMs: number[] = [];
  readonly stderrTail: string[] = [];
  /** Every upstream pid ever seen, to find those left running after the proxy died. */
  readonly upstreamPids = new Set<number>();
  /** When each upstream last said it was ready (its stderr), and undefined while it is down. */
  readonly readyAt = new Map<string, number | undefined>();

  constructor(
    private readonly config: string,
    private readonly port: number,
    private readonly memoryFile: string,
    private readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(): Promise<void> {
    this.expectedExit = false;
    this.instances++;
    this.readyAt.clear();
    const proc = spawn(
      process.execPath,
      ['--expose-gc', '--import', MEMORY_PRELOAD, KAVACH, 'mcp', '--config', this.config, '--http', `127.0.0.1:${this.port}`],
      { cwd: REPO, env: { ...process.env, SOAK_MEMORY: this.memoryFile }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.proc = proc;
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    let buffered = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      writeFileSync(this.logFile, text, { flag: 'a' });
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        this.stderrTail.push(line);
        if (this.stderrTail.length > 200) this.stderrTail.shift();
        if (line.includes('listening on http://')) listening();
        const up = /upstream (\w+): (ready|.*restarting)/.exec(line);
        if (up) this.readyAt.set(up[1] as string, up[2] === 'ready' ? Date.now() : undefined);
      }
    });
    proc.once('exit', (code, sig) => {
      if (!this.expectedExit) {
        const why = `proxy pid ${proc.pid} exited on its own (code ${code}, signal ${sig}) at ${since(Date.now())}`;
        this.unexpectedExits.push(why);
        say(why);
      }
    });
    const spawned = Date.now();
    const giveUp = new AbortController();
    const timeout = sleep(60_000, undefined, { signal: giveUp.signal }).then(() => {
      throw new Error(`the proxy did not listen within 60 s:\n${this.stderrTail.slice(-20).join('\n')}`);
    });
    try {
      await Promise.race([ready, timeout]);
    } finally {
      giveUp.abort();
      timeout.catch(() => undefined);
    }
    this.startupMs.push(Date.now() - spawned);
  }

  /** The upstream processes now running under the proxy, by server name. */
  upstreams(): Map<string, number> {
    const out = new Map<string, number>();
    if (this.pid === undefined) return out;
    for (const child of childrenOf(this.pid)) {
      const cmd = cmdline(child);
      this.upstreamPids.add(child);
      if (cmd.includes('soak-upstream.mjs')) out.set('ledger', child);
      else if (cmd.includes('server-filesystem')) out.set('fs', child);
    }
    return out;
  }

  async stop(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const p = this.proc;
    this.upstreams(); // remember its children before they are orphaned
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    this.expectedExit = true;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    const wait = new AbortController();
    const late = sleep(30_000, 'late', { signal: wait.signal }).catch(() => undefined);
    const first = await Promise.race([exited, late]);
    wait.abort();
    if (first === 'late') {
      say(`proxy did not exit within 30 s of ${signal}; SIGKILL`);
      this.unexpectedExits.push(`proxy did not exit within 30 s of ${signal}`);
      p.kill('SIGKILL');
      await exited;
    }
  }

  get running(): boolean {
    const p = this.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }
}

// ---------------------------------------------------------------------------------------------
// Load: clients, the calls they make, and what came back.

/**
 * `unknown_tool`: the proxy does not list the tool (its upstream has not come up since the proxy
 * started); the gate is not asked, so there is no record to find.
 */
type CallKind = 'ok' | 'tool_error' | 'upstream_failure' | 'refused' | 'unknown_tool' | 'error';
/** Kinds whose call the gate permitted and the proxy forwarded. */
const FORWARDED: CallKind[] = ['ok', 'tool_error', 'upstream_failure'];

interface CallRecord {
  id: string;
  server: 'ledger' | 'fs';
  tool: string;
  big: boolean;
  sentAt: number;
  answeredAt: number;
  kind: CallKind;
  /** The refusal code, or the error's label. */
  code?: string;
  evaluationId?: string;
}

interface Op {
  server: 'ledger' | 'fs';
  tool: string;
  args: Record<string, unknown>;
  big: boolean;
}

interface Files {
  small: string;
  big: string[];
}

function pickOp(id: string, bigDue: boolean, files: Files): Op {
  if (bigDue) {
    const bytes = Math.round(rand(4, 10) * MB);
    const which = Math.floor(Math.random() * 3);
    if (which === 0) return { server: 'ledger', tool: 'blob', args: { call: id, bytes }, big: true };
    if (which === 1) return { server: 'ledger', tool: 'append', args: { call: id, text: 'y'.repeat(bytes) }, big: true };
    const path = files.big[Math.floor(Math.random() * files.big.length)] as string;
    return { server: 'fs', tool: 'read_text_file', args: { call: id, path }, big: true };
  }
  const r = Math.random();
  if (r < 0.45) return { server: 'ledger', tool: 'append', args: { call: id, text: 'z'.repeat(Math.round(rand(50, 2000))) }, big: false };
  if (r < 0.75) return { server: 'ledger', tool: 'echo', args: { call: id, text: `hello ${id}` }, big: false };
  if (r < 0.95) return { server: 'fs', tool: 'read_text_file', args: { call: id, path: files.small }, big: false };
  return { server: 'ledger', tool: 'forbidden', args: { call: id }, big: false };
}

/** A short label for a thrown error: `HTTP 404`, `MCP -32001`, `ECONNRESET`, ... */
function errorLabel(err: unknown): string {
  if (err instanceof StreamableHTTPError) return `HTTP ${err.code}`;
  const e = err as { code?: unknown; message?: string; cause?: unknown };
  let cause: unknown = e;
  for (let i = 0; i < 5 && cause; i++) {
    const c = cause as { code?: unknown; cause?: unknown };
    if (typeof c.code === 'string') return c.code;
    cause = c.cause;
  }
  if (typeof e.code === 'number') return `MCP ${e.code}`;
  return (e.message ?? String(err)).slice(0, 40);
}

function classify(result: CallToolResult): Pick<CallRecord, 'kind' | 'code' | 'evaluationId'> {
  const verdict = result._meta?.['dev.kavach/verdict'] as { code?: string; evaluationId?: string } | undefined;
  if (verdict)
    return { kind: 'refused', code: verdict.code ?? '?', ...(verdict.evaluationId ? { evaluationId: verdict.evaluationId } : {}) };
  if (!result.isError) return { kind: 'ok' };
  const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join(' ');
  if (/^Unknown tool: /.test(text)) return { kind: 'unknown_tool', code: text.slice(0, 80) };
  return /^Server '[^']+' failed to answer/.test(text)
    ? { kind: 'upstream_failure', code: text.slice(0, 200) }
    : { kind: 'tool_error', code: text.slice(0, 80) };
}

class LoadClient {
  private client: Client | undefined;
  private transport: StreamableHTTPClientTransport | undefined;
  private n = 0;
  private untilChurn = 0;
  private untilBig: number;
  sessions = 0;
  connectFailures = 0;
  private inFlight: AbortController | undefined;

  constructor(
    private readonly index: number,
    private readonly url: URL,
    private readonly token: string,
    private readonly files: Files,
    private readonly calls: CallRecord[],
  ) {
    this.untilBig = Math.round(rand(0.5, 1.5) * BIG_EVERY);
  }

  private async connect(): Promise<void> {
    const transport = new StreamableHTTPClientTransport(this.url, { requestInit: { headers: { authorization: `Bearer ${this.token}` } } });
    const client = new Client({ name: `soak-${this.index}`, version: '1.0.0' });
    // The SDK leaves a call pending when the stream of its answer breaks (the proxy died) and no
    // event id was sent to resume from: it would wait for its timeout. A client that sees the
    // connection go gives the call up, as an agent would.
    client.onerror = (err) => {
      if (/SSE stream disconnected/.test(err.message)) this.inFlight?.abort(new Error('connection lost mid-call'));
    };
    await client.connect(transport, { timeout: 20_000 });
    this.client = client;
    this.transport = transport;
    this.sessions++;
    this.untilChurn = Math.round(rand(5, 30));
  }

  /** Session churn: half the time the session is ended with a DELETE, half the time abandoned. */
  private async disconnect(politely: boolean): Promise<void> {
    const { client, transport } = this;
    this.client = undefined;
    this.transport = undefined;
    if (politely) await transport?.terminateSession().catch(() => undefined);
    await client?.close().catch(() => undefined);
  }

  /** `abort` ends calls still unanswered when the run is over (they count as `unanswered at the end`). */
  async run(stopAt: number, abort: AbortSignal): Promise<void> {
    while (Date.now() < stopAt) {
      if (!this.client) {
        try {
          await this.connect();
        } catch {
          this.connectFailures++;
          await sleep(250);
          continue;
        }
      }
      const client = this.client as Client;
      const id = `c${this.index}-${this.n++}`;
      const bigDue = --this.untilBig <= 0;
      if (bigDue) this.untilBig = Math.round(rand(0.5, 1.5) * BIG_EVERY);
      const op = pickOp(id, bigDue, this.files);
      const sentAt = Date.now();
      let outcome: Pick<CallRecord, 'kind' | 'code' | 'evaluationId'>;
      const inFlight = new AbortController();
      this.inFlight = inFlight;
      try {
        const result = (await client.callTool({ name: `${op.server}__${op.tool}`, arguments: op.args }, CallToolResultSchema, {
          timeout: 120_000,
          signal: AbortSignal.any([abort, inFlight.signal]),
        })) as CallToolResult;
        outcome = classify(result);
      } catch (err) {
        let code = errorLabel(err);
        if (inFlight.signal.aborted) code = 'connection lost mid-call';
        else if (abort.aborted) code = 'unanswered at the end';
        outcome = { kind: 'error', code };
      } finally {
        this.inFlight = undefined;
      }
      this.calls.push({ id, server: op.server, tool: op.tool, big: op.big, sentAt, answeredAt: Date.now(), ...outcome });
      if (outcome.kind === 'error') await this.disconnect(false);
      else if (--this.untilChurn <= 0) await this.disconnect(Math.random() < 0.5);
      await sleep(rand(0, 2 * THINK_MS));
    }
    await this.disconnect(true);
  }
}

// ---------------------------------------------------------------------------------------------
// The fault schedule.

interface Fault {
  what: 'upstream-kill' | 'redis-stop' | 'redis-kill' | 'proxy-kill';
  target: string;
  at: number;
  /** Redis unreachable from `at` until `until` (its SIGCONT, or the restart's spawn). */
  until?: number;
  /** When load could succeed again (the proxy's restart, Redis back, the upstream killed). */
  resumeAt: number;
  recoveredAt?: number;
  skipped?: string;
}

async function runFaults(redis: SoakRedis, proxy: SoakProxy, faults: Fault[], stopAt: number): Promise<void> {
  const D = DURATION_MS;
  const outage = Math.min(8_000, Math.max(2_000, 0.1 * D));
  const plan: { at: number; run: () => Promise<void> }[] = [];
  // The proxy dies early enough that its second life is long enough to judge memory on.
  plan.push({
    at: 0.35 * D,
    run: async () => {
      const at = Date.now();
      await proxy.stop('SIGKILL');
      say(`proxy SIGKILLed; restarting in 2 s`);
      await sleep(2_000);
      const resumeAt = Date.now();
      await proxy.start();
      faults.push({ what: 'proxy-kill', target: 'proxy', at, resumeAt });
      say(`proxy restarted (pid ${proxy.pid})`);
    },
  });
  plan.push({
    at: 0.5 * D,
    run: async () => {
      redis.signal('SIGSTOP');
      const at = Date.now();
      say(`redis SIGSTOPped for ${outage / 1000} s`);
      await sleep(outage);
      const until = Date.now();
      redis.signal('SIGCONT');
      faults.push({ what: 'redis-stop', target: 'redis', at, until, resumeAt: until });
      say('redis SIGCONT');
    },
  });
  plan.push({
    at: 0.65 * D,
    run: async () => {
      await redis.kill();
      const at = Date.now();
      say(`redis SIGKILLed; restarting in ${outage / 1000} s`);
      await sleep(outage);
      const until = Date.now();
      await redis.start();
      faults.push({ what: 'redis-kill', target: 'redis', at, until, resumeAt: until });
      say('redis restarted');
    },
  });
  let turn = 0;
  for (let at = KILL_EVERY_MS; at < D - 5_000; at += KILL_EVERY_MS) {
    plan.push({
      at,
      run: async () => {
        const target = turn++ % 2 === 0 ? 'ledger' : 'fs';
        const pid = proxy.upstreams().get(target);
        const at = Date.now();
        // Only a server that is up and serving: killing one still starting tests nothing more.
        if (pid === undefined || proxy.readyAt.get(target) === undefined) {
          faults.push({ what: 'upstream-kill', target, at, resumeAt: at, skipped: 'not up' });
          say(`upstream ${target} not up: kill skipped`);
          return;
        }
        process.kill(pid, 'SIGKILL');
        faults.push({ what: 'upstream-kill', target, at, resumeAt: at });
        say(`upstream ${target} (pid ${pid}) SIGKILLed`);
      },
    });
  }
  plan.sort((a, b) => a.at - b.at);
  // Faults overlap in time (an upstream kill during a Redis outage): each runs on its own.
  const running: Promise<void>[] = [];
  for (const step of plan) {
    const wait = t0 + step.at - Date.now();
    if (wait > 0) await sleep(wait);
    if (Date.now() >= stopAt) break;
    running.push(
      step.run().catch((err: unknown) => {
        say(`fault failed: ${String(err)}`);
      }),
    );
  }
  await Promise.all(running);
}

// ---------------------------------------------------------------------------------------------
// Afterwards: the audit log, the ledger, memory.

type AuditRecord = Record<string, unknown> & { type: string; seq: number; time: number };

function readJsonLines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // a torn last line (the writer was killed); the verifier judges the file
    }
  }
  return out;
}

function readAuditLog(path: string): AuditRecord[] {
  const segments = readdirSync(dirname(path))
    .filter((f) => f.startsWith(`${basename(path)}.`) && /\.\d{6}$/.test(f))
    .sort()
    .map((f) => join(dirname(path), f));
  return [...segments, path].flatMap((p) => readJsonLines<AuditRecord>(p));
}

interface MemorySample {
  t: number;
  pid: number;
  rss: number;
  heap: number;
  cpuUs: number;
  /** Heap right after a full GC (every 5 s). */
  live?: number;
}

/** Least-squares slope of (t, v) in v-units per minute. */
function slopePerMinute(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mt = points.reduce((s, [t]) => s + t, 0) / n;
  const mv = points.reduce((s, [, v]) => s + v, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, v] of points) {
    num += (t - mt) * (v - mv);
    den += (t - mt) ** 2;
  }
  return den === 0 ? Number.NaN : (num / den) * 60_000;
}

/**
 * How fast the live heap (after a full GC) grows, in bytes per minute: the lowest in the last third
 * of the samples against the lowest in the first third. Lowest, because a GC that ran while a 10 MB
 * answer was in flight counts it as live; a leak raises even the lowest.
 */
function liveGrowth(samples: MemorySample[]): number {
  const live = samples.filter((s) => s.live !== undefined) as (MemorySample & { live: number })[];
  if (live.length < 6) return Number.NaN;
  const third = Math.floor(live.length / 3);
  const lowest = (part: typeof live) => part.reduce((m, s) => (s.live < m.live ? s : m));
  const first = lowest(live.slice(0, third));
  const last = lowest(live.slice(-third));
  const span =
    ((live.at(-1) as MemorySample).t + (live[live.length - third] as MemorySample).t) / 2 -
    ((live[0] as MemorySample).t + (live[third - 1] as MemorySample).t) / 2;
  return ((last.live - first.live) / span) * 60_000;
}

interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

const mb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / MB).toFixed(1)} MB` : '–');
const ms = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} ms` : '–');

function countBy<T>(items: T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const it of items) m.set(key(it), (m.get(key(it)) ?? 0) + 1);
  return new Map([...m].sort((a, b) => b[1] - a[1]));
}

const listed = (m: Map<string, number>) => [...m].map(([k, v]) => `${k} ${v}`).join(', ') || 'none';

function sample<T>(items: T[], n = 3): string {
  return items
    .slice(0, n)
    .map((i) => JSON.stringify(i))
    .join('; ');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kavach-soak-'));
  const loadStart = loadavg()[0]?.toFixed(1);
  say(`working in ${dir}; ${CLIENTS} clients for ${MINUTES} min; ${machine()}`);
  const keygen = spawnSync(process.execPath, [KAVACH, 'keygen', '--out', join(dir, 'keys')], { encoding: 'utf8' });
  if (keygen.status !== 0) throw new Error(`keygen failed: ${keygen.stderr}`);

  const files: Files = { small: join(dir, 'files/small.txt'), big: [] };
  mkdirSync(join(dir, 'files'));
  writeFileSync(files.small, 'a small file\n'.repeat(40));
  for (const size of [4.2, 6, 8, 10]) {
    const path = join(dir, `files/big-${size}.txt`);
    writeFileSync(path, 'b'.repeat(Math.round(size * MB)));
    files.big.push(path);
  }
  const redisPort = await freePort();
  const redisDir = join(dir, 'redis');
  mkdirSync(redisDir);
  const redis = new SoakRedis(redisPort, redisDir);
  await redis.start();
  say(`redis-server of its own on 127.0.0.1:${redisPort}`);

  const audit = join(dir, 'audit/mcp.jsonl');
  const ledger = join(dir, 'ledger.jsonl');
  const memoryFile = join(dir, 'memory.jsonl');
  const tokens = Array.from({ length: PRINCIPALS }, (_, i) => `soak-token-${i}-${Math.random().toString(36).slice(2).padEnd(12, '0')}`);
  const q = JSON.stringify;
  writeFileSync(
    join(dir, 'policy.toml'),
    `# Every soak principal may call the ledger and read files, under a limit that sends every call to Redis.
[[policy]]
name = "soak-calls"
effect = "permit"
conditions = [{ action = ["ledger.append", "ledger.echo", "ledger.blob", "fs.read_text_file"] }, { rate_limit = { max = 1000000, window = "1m", per = "principal" } }]

[[policy]]
name = "no-forbidden"
effect = "refuse"
conditions = [{ action = "ledger.forbidden" }]
`,
  );
  writeFileSync(
    join(dir, 'kavach.toml'),
    `[gate]
policy = "policy.toml"
[keys]
path = "keys/secret.key"
[audit]
path = ${q(audit)}
record_args = true
redact = ["/text"]
[redis]
url = "redis://127.0.0.1:${redisPort}"
[tools]
pinning = false
# Issue #21 item 3: the behaviour detector's per-session thresholds are for agents, not a load run.
[drift]
enabled = false
[http]
${tokens.map((t, i) => `[[http.clients]]\ntoken = ${q(t)}\nprincipal_id = "soak-${i}"\nprincipal_kind = "service"\n`).join('')}
[servers.ledger]
command = ${q(process.execPath)}
args = [${q(LEDGER_SERVER)}]
env = { SOAK_LEDGER = ${q(ledger)}, SOAK_AUDIT = ${q(audit)} }
[servers.fs]
command = ${q(process.execPath)}
args = [${q(FILESYSTEM)}, ${q(join(dir, 'files'))}]
`,
  );
  const proxyPort = await freePort();
  const proxy = new SoakProxy(join(dir, 'kavach.toml'), proxyPort, memoryFile, join(dir, 'proxy.log'));
  const calls: CallRecord[] = [];
  const faults: Fault[] = [];
  let exitCode = 1;
  try {
    await proxy.start();
    say(`proxy pid ${proxy.pid} on 127.0.0.1:${proxyPort}`);
    const url = new URL(`http://127.0.0.1:${proxyPort}/mcp`);
    const stopAt = t0 + DURATION_MS;
    const clients = Array.from({ length: CLIENTS }, (_, i) => new LoadClient(i, url, tokens[i % PRINCIPALS] as string, files, calls));
    // A proxy that died on its own is started again so the run goes on; the invariant still breaks.
    let restarting = false;
    const watchdog = setInterval(() => {
      if (!proxy.running && proxy.unexpectedExits.length > 0 && !restarting) {
        restarting = true;
        void proxy.start().finally(() => (restarting = false));
      }
    }, 1_000);
    const progress = setInterval(() => {
      const answered = calls.filter((c) => c.kind !== 'error').length;
      say(`${calls.length} calls, ${answered} answered, ${calls.filter((c) => c.kind === 'ok').length} ok`);
    }, 15_000);
    // Calls still unanswered 30 s after the end are given up on (and counted).
    const abort = new AbortController();
    const giveUp = setTimeout(() => abort.abort(), DURATION_MS + 30_000 - (Date.now() - t0));
    await Promise.all([runFaults(redis, proxy, faults, stopAt), ...clients.map((c) => c.run(stopAt, abort.signal))]);
    clearTimeout(giveUp);
    clearInterval(progress);
    clearInterval(watchdog);
    const loadEnd = Date.now();
    say('load done; closing the proxy (SIGTERM: final checkpoint)');
    const rssEndSample = readJsonLines<MemorySample>(memoryFile).at(-1);
    await proxy.stop('SIGTERM');
    await sleep(500); // orphaned upstreams notice their closed stdin
    const orphans = [...proxy.upstreamPids].filter(alive);
    for (const pid of orphans) process.kill(pid, 'SIGKILL');
    await redis.kill();

    // -- the audit log, the ledger, memory
    const verify = spawnSync(process.execPath, [KAVACH, 'audit', 'verify', audit, '--keys', join(dir, 'keys/public.json'), '--strict'], {
      encoding: 'utf8',
    });
    writeFileSync(
      join(dir, 'calls.jsonl'),
      calls.map((c) => JSON.stringify({ ...c, t: c.sentAt - t0, dt: c.answeredAt - c.sentAt })).join('\n'),
    );
    writeFileSync(
      join(dir, 'faults.json'),
      JSON.stringify(
        faults.map((f) => ({ ...f, t: f.at - t0 })),
        null,
        1,
      ),
    );
    const records = readAuditLog(audit);
    const verdicts = records.filter((r) => r.type === 'verdict');
    const byEvaluation = new Map<string, AuditRecord>();
    for (const r of records) if (typeof r.evaluationId === 'string' && r.type !== 'outcome') byEvaluation.set(r.evaluationId, r);
    const outcomes = new Map<string, AuditRecord>();
    for (const r of records) if (r.type === 'outcome') outcomes.set(r.evaluationId as string, r);
    const permitByCall = new Map<string, AuditRecord>();
    const permitJtis = new Set<string>();
    for (const v of verdicts) {
      if (v.verdict !== 'permit') continue;
      const call = (v.argsValue as { call?: unknown } | undefined)?.call;
      if (typeof call === 'string') permitByCall.set(call, v);
      if (typeof v.permit === 'string') permitJtis.add(v.permit);
    }
    const ran = readJsonLines<{ tool: string; call: string; jti: string | null; recorded: boolean; at: number }>(ledger);

    const invariants: Invariant[] = [];
    invariants.push({
      name: 'audit log verifies (`kavach audit verify --strict`)',
      ok: verify.status === 0,
      detail: (verify.stdout + verify.stderr).trim().split('\n').slice(0, 3).join(' / '),
    });

    const answered = calls.filter((c) => c.kind !== 'error' && c.kind !== 'unknown_tool');
    const unrecorded: { call: CallRecord; missing: string }[] = [];
    for (const c of answered) {
      if (c.kind === 'refused') {
        if (!c.evaluationId || !byEvaluation.has(c.evaluationId)) unrecorded.push({ call: c, missing: 'refusal record' });
        continue;
      }
      const permit = permitByCall.get(c.id);
      if (!permit) unrecorded.push({ call: c, missing: 'permit verdict' });
      else if (!outcomes.has(permit.evaluationId as string)) unrecorded.push({ call: c, missing: 'outcome' });
    }
    // The proxy's own records (outcomes, its refusals) are written after the answer: one SIGKILL
    // right after an answer can take them. Said apart, since it is that window and nothing else.
    const proxyKills = faults.filter((f) => f.what === 'proxy-kill');
    // An answer can reach a starved client a little after the kill; it was sent before.
    const nearKill = unrecorded.filter((u) =>
      proxyKills.some((f) => u.call.answeredAt >= f.at - 1_000 && u.call.answeredAt <= f.resumeAt),
    ).length;
    invariants.push({
      name: 'every answered call has its audit records',
      ok: unrecorded.length === 0,
      detail: `${answered.length} answered; ${unrecorded.length} without (${listed(countBy(unrecorded, (u) => u.missing))}), ${nearKill} of them answered < 1 s before the proxy was SIGKILLed${unrecorded.length ? `: ${sample(unrecorded)}` : ''}`,
    });

    const unpermitted = ran.filter((r) => r.jti === null || !permitJtis.has(r.jti));
    const late = ran.filter((r) => !r.recorded);
    const writes = ran.filter((r) => r.tool === 'append');
    invariants.push({
      name: 'every call an upstream ran had a permit recorded before it ran',
      ok: unpermitted.length === 0 && late.length === 0,
      detail: `${ran.length} ran (${writes.length} writes); ${unpermitted.length} without a permit record, ${late.length} whose record was not in the log when it ran${unpermitted.length + late.length ? `: ${sample([...unpermitted, ...late])}` : ''}`,
    });
    const forbiddenRan = ran.filter((r) => r.tool === 'forbidden');
    invariants.push({
      name: 'nothing the policy refuses ran',
      ok: forbiddenRan.length === 0,
      detail: `${calls.filter((c) => c.tool === 'forbidden').length} calls of the refused tool, ${forbiddenRan.length} ran`,
    });

    // A verdict's time is when its evaluation began. One that began inside an outage may still be
    // a fair permit: its Redis command waited in the socket and was answered, within its timeout,
    // once Redis was back. What cannot be fair is a permit whose effect came before Redis was back:
    // a call the upstream ran, or the client had permitted, before the outage ended.
    const outages = faults.filter((f) => f.until !== undefined);
    const outageOf = (t: number) => outages.find((f) => t >= f.at + SIGNAL_GRACE_MS && t <= (f.until as number));
    const permitTime = new Map<string, number>();
    for (const v of verdicts) if (v.verdict === 'permit' && typeof v.permit === 'string') permitTime.set(v.permit, v.time);
    const ranInOutage = ran.filter((r) => {
      const evaluated = r.jti !== null ? permitTime.get(r.jti) : undefined;
      const outage = evaluated !== undefined ? outageOf(evaluated) : undefined;
      return outage !== undefined && r.at <= (outage.until as number);
    });
    const answeredInOutage = calls.filter((c) => {
      const outage = FORWARDED.includes(c.kind) ? outageOf(c.sentAt) : undefined;
      return outage !== undefined && c.answeredAt <= (outage.until as number);
    });
    const evaluatedInOutage = verdicts.filter((v) => v.verdict === 'permit' && outageOf(v.time) !== undefined).length;
    const refusedInOutage = calls.filter((c) => c.code === 'STORE_UNAVAILABLE').length;
    invariants.push({
      name: 'no permit while Redis was unreachable',
      ok: outages.length > 0 && ranInOutage.length === 0 && answeredInOutage.length === 0,
      detail: `${outages.length} outages; ${ranInOutage.length} calls evaluated inside one ran before it ended, ${answeredInOutage.length} calls sent inside one were permitted before it ended; ${refusedInOutage} calls refused STORE_UNAVAILABLE; ${evaluatedInOutage} permits evaluated inside one took effect after it (allowed: a Redis command may wait in its socket for Redis to come back)${ranInOutage.length + answeredInOutage.length ? `: ${sample([...ranInOutage, ...answeredInOutage])}` : ''}`,
    });

    // Recovery: the first call after each fault that succeeded where the fault hit.
    const succeeded = calls.filter((c) => c.kind === 'ok').sort((a, b) => a.answeredAt - b.answeredAt);
    // Nothing succeeds while Redis or the proxy is down: an upstream killed during (or just before)
    // one of those is timed from its end.
    const blackouts = faults
      .filter((f) => f.what !== 'upstream-kill')
      .map((f) => ({ from: f.at, to: f.until ?? f.resumeAt }))
      .sort((a, b) => a.from - b.from);
    for (const f of faults) {
      if (f.skipped) continue;
      const inScope = (c: CallRecord) => f.what !== 'upstream-kill' || c.server === f.target;
      let first = succeeded.find((c) => c.sentAt >= f.resumeAt && inScope(c));
      if (f.what === 'upstream-kill')
        for (const b of blackouts) {
          if (b.to <= f.resumeAt || b.from > (first?.answeredAt ?? Number.POSITIVE_INFINITY)) continue;
          f.resumeAt = b.to;
          first = succeeded.find((c) => c.sentAt >= f.resumeAt && inScope(c));
        }
      if (first) f.recoveredAt = first.answeredAt;
    }
    const unrecovered = faults.filter((f) => !f.skipped && f.recoveredAt === undefined);
    invariants.push({
      name: 'every fault recovered without restarting the proxy; the proxy never exited on its own',
      ok: unrecovered.length === 0 && proxy.unexpectedExits.length === 0 && faults.length > 0,
      detail: `${faults.filter((f) => !f.skipped).length} faults, ${unrecovered.length} not recovered before the end${unrecovered.length ? ` (${unrecovered.map((f) => `${f.what} ${f.target} at ${since(f.at)}`).join(', ')})` : ''}; ${proxy.unexpectedExits.length} unexpected proxy exits${proxy.unexpectedExits.length ? `: ${proxy.unexpectedExits.join('; ')}` : ''}`,
    });

    const memory = readJsonLines<MemorySample>(memoryFile);
    const lastPid = memory.at(-1)?.pid;
    const lastLife = memory.filter((s) => s.pid === lastPid);
    const secondHalf = lastLife.filter((s) => s.t >= ((lastLife[0]?.t ?? 0) + (lastLife.at(-1)?.t ?? 0)) / 2);
    const heapSlope = liveGrowth(secondHalf);
    const rssSlope = slopePerMinute(secondHalf.map((s) => [s.t, s.rss]));
    const judgedMs = (secondHalf.at(-1)?.t ?? 0) - (secondHalf[0]?.t ?? 0);
    const judged = judgedMs >= 60_000;
    invariants.push({
      name: 'memory flat (live heap after a full GC grows < 2 MB/min over the second half of the last proxy process)',
      ok: !judged || heapSlope < 2 * MB,
      detail: `${judged ? '' : `not judged: ${(judgedMs / 1000).toFixed(0)} s is under 60 s; `}live heap ${mb(heapSlope)}/min (lowest of the last third against the first), RSS ${mb(rssSlope)}/min over ${(judgedMs / 1000).toFixed(0)} s`,
    });

    // -- figures
    const first = memory[0];
    const peak = memory.reduce((m, s) => Math.max(m, s.rss), 0);
    const okSmall = calls.filter((c) => c.kind === 'ok' && !c.big).map((c) => c.answeredAt - c.sentAt);
    const okBig = calls.filter((c) => c.kind === 'ok' && c.big).map((c) => c.answeredAt - c.sentAt);
    const recoveries = (what: Fault['what']) => {
      const fs = faults.filter((f) => f.what === what && !f.skipped);
      const times = fs.filter((f) => f.recoveredAt !== undefined).map((f) => (f.recoveredAt as number) - f.resumeAt);
      if (fs.length === 0) return 'none';
      return `${fs.length}×; first ok call after p50 ${ms(percentile(times, 50))}, max ${ms(Math.max(...times))}${times.length < fs.length ? `; ${fs.length - times.length} never` : ''}`;
    };
    const recordTypes = countBy(records, (r) => r.type);
    let cpuUs = 0;
    for (const pid of new Set(memory.map((m) => m.pid))) {
      const life = memory.filter((m) => m.pid === pid);
      cpuUs += (life.at(-1)?.cpuUs ?? 0) - (life[0]?.cpuUs ?? 0);
    }
    const reached = calls.filter((c) => c.kind !== 'error').length;
    const errors = calls.filter((c) => c.kind === 'error');
    const oversize = errors.filter((c) => c.code === 'HTTP 400' && c.big).map((c) => c.answeredAt);
    const afterOversize = errors.filter(
      (c) => c.code === 'ECONNRESET' && oversize.some((t) => c.sentAt >= t && c.sentAt - t < 2_000),
    ).length;
    // In flight when the proxy was killed, or sent while it was down.
    const aroundKill = (c: CallRecord) => proxyKills.some((f) => c.answeredAt >= f.at && c.sentAt <= f.resumeAt + 1_000);
    // Why each upstream restart happened, as the proxy said it.
    const restartCauses = new Map<string, number>();
    for (const line of readFileSync(join(dir, 'proxy.log'), 'utf8').split('\n')) {
      const m = /upstream (\w+): (.*); restarting in/.exec(line);
      if (m) restartCauses.set(`${m[1]}: ${m[2]}`, (restartCauses.get(`${m[1]}: ${m[2]}`) ?? 0) + 1);
    }
    const overLimit = calls.filter((c) => c.kind === 'upstream_failure' && /over the limit/.test(c.code ?? '')).length;
    const rows: [string, string][] = [
      [
        'run',
        `${MINUTES} min, ${CLIENTS} clients (${PRINCIPALS} tokens), ${clients.reduce((s, c) => s + c.sessions, 0)} sessions opened; ${machine()}; load average ${loadStart} at the start, ${loadavg()[0]?.toFixed(1)} at the end`,
      ],
      [
        'calls',
        `${calls.length} (${(calls.length / ((loadEnd - t0) / 1000)).toFixed(1)}/s), ${calls.filter((c) => c.big).length} with 4–10 MB`,
      ],
      [
        'answered',
        `ok ${calls.filter((c) => c.kind === 'ok').length}, tool error ${calls.filter((c) => c.kind === 'tool_error').length}, upstream failure ${calls.filter((c) => c.kind === 'upstream_failure').length}, unknown tool (upstream not yet up) ${calls.filter((c) => c.kind === 'unknown_tool').length}`,
      ],
      [
        'refused, by code',
        listed(
          countBy(
            calls.filter((c) => c.kind === 'refused'),
            (c) => c.code ?? '?',
          ),
        ),
      ],
      ['errors (no answer) around the proxy kill, by code', listed(countBy(errors.filter(aroundKill), (c) => c.code ?? '?'))],
      [
        'errors (no answer) at other times, by code',
        `${listed(
          countBy(
            errors.filter((c) => !aroundKill(c)),
            (c) => c.code ?? '?',
          ),
        )}; ${afterOversize} ECONNRESET of a call sent < 2 s after an oversize request's 400 (the connection it left: issue #21 item 1)`,
      ],
      ['upstream restarts (proxy log), by cause', listed(restartCauses)],
      ['answers over the upstream message limit', `${overLimit}, each failed alone (its upstream kept)`],
      ['latency of ok calls (small)', `p50 ${ms(percentile(okSmall, 50))}, p99 ${ms(percentile(okSmall, 99))}`],
      ['latency of ok calls (4–10 MB)', `p50 ${ms(percentile(okBig, 50))}, p99 ${ms(percentile(okBig, 99))} (${okBig.length} ok)`],
      [
        'upstream SIGKILL (time with Redis or the proxy down not counted)',
        `${recoveries('upstream-kill')}${faults.some((f) => f.skipped) ? `; ${faults.filter((f) => f.skipped).length} skipped (upstream not up)` : ''}`,
      ],
      ['Redis SIGSTOP', recoveries('redis-stop')],
      ['Redis SIGKILL + restart', recoveries('redis-kill')],
      ['proxy SIGKILL + restart', `${recoveries('proxy-kill')}; spawn to listening ${proxy.startupMs.map(ms).join(', ')}`],
      ['proxy RSS start / end / peak', `${first ? mb(first.rss) : '–'} / ${rssEndSample ? mb(rssEndSample.rss) : '–'} / ${mb(peak)}`],
      [
        'proxy heap start / end',
        `${first ? mb(first.heap) : '–'} / ${rssEndSample ? mb(rssEndSample.heap) : '–'}; live heap ${mb(heapSlope)}/min`,
      ],
      ['proxy CPU', `${(cpuUs / 1e6).toFixed(1)} s, ${(cpuUs / 1000 / Math.max(1, reached)).toFixed(1)} ms per answered call`],
      ['audit log', `${records.length} records (${listed(recordTypes)})`],
      ['upstream processes left running', `${orphans.length}`],
    ];
    process.stdout.write(`\n| soak figure | value |\n|---|---|\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`);
    process.stdout.write(
      `\n| invariant | held | detail |\n|---|---|---|\n${invariants.map((i) => `| ${i.name} | ${i.ok ? 'yes' : '**NO**'} | ${i.detail} |`).join('\n')}\n\n`,
    );
    const broken = invariants.filter((i) => !i.ok);
    if (broken.length) say(`${broken.length} invariant(s) broke; files kept in ${dir}`);
    exitCode = broken.length ? 1 : 0;
  } finally {
    await proxy.stop('SIGKILL').catch(() => undefined);
    for (const pid of proxy.upstreamPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await redis.kill().catch(() => undefined);
    if (!KEEP && exitCode === 0) rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = exitCode;
}

await main();
