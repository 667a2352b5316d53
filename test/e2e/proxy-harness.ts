import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const KAVACH = join(REPO, 'bin/kavach.js');
export const EVERYTHING = join(REPO, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
export const FILESYSTEM = join(REPO, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
export const FIXTURE = join(REPO, 'test/e2e/fixtures/fixture-server.mjs');
/** A malicious server: poisoned descriptions, hidden characters, a leaking result, a tool added late. */
export const POISONED = join(REPO, 'test/e2e/fixtures/poisoned-server.mjs');

export function tempDir(prefix = 'kavach-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A TOML string literal (paths may hold anything). */
export const q = (s: string): string => JSON.stringify(s);

export interface RunningProxy {
  client: Client;
  transport: StdioClientTransport;
  stderr: () => string;
  pid: number;
  close(): Promise<void>;
}

/** Starts `kavach mcp --config <file>` as a real process and connects the SDK client to it. */
export async function startProxy(
  configPath: string,
  opts: {
    capabilities?: ClientCapabilities;
    env?: Record<string, string>;
    /** Called before the client connects (to hear what the proxy says right after initialize). */
    beforeConnect?: (client: Client) => void;
  } = {},
): Promise<RunningProxy> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [KAVACH, 'mcp', '--config', configPath],
    env: { ...(process.env as Record<string, string>), ...opts.env },
    cwd: REPO,
    stderr: 'pipe',
  });
  let err = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const client = new Client({ name: 'e2e', version: '1.0.0' }, { capabilities: opts.capabilities ?? {} });
  opts.beforeConnect?.(client);
  await client.connect(transport, { timeout: 30_000 });
  return {
    client,
    transport,
    stderr: () => err,
    pid: transport.pid ?? -1,
    async close() {
      await client.close().catch(() => undefined);
      await transport.close().catch(() => undefined);
    },
  };
}

export interface RunningHttpProxy {
  /** The address it listens on (`http://127.0.0.1:<port>/mcp`). */
  base: string;
  stderr: () => string;
  /** An SDK client connected with this bearer token; closed by `close()`. */
  connect(token: string, name?: string): Promise<Client>;
  close(): Promise<void>;
}

/** Starts `kavach mcp --config <file> --http 127.0.0.1:0` as a real process and waits until it listens. */
export async function startHttpProxy(configPath: string, env: Record<string, string> = {}): Promise<RunningHttpProxy> {
  const child = spawn(process.execPath, [KAVACH, 'mcp', '--config', configPath, '--http', '127.0.0.1:0'], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const clients: Client[] = [];
  const close = async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  };
  let base: string;
  try {
    base = await waitFor('the proxy to listen', () => /listening on (http:\/\/[^\s]+)/.exec(err)?.[1], 30_000);
  } catch (e) {
    await close();
    throw e;
  }
  return {
    base,
    stderr: () => err,
    async connect(token, name = 'http-e2e') {
      const client = new Client({ name, version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(base), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
      );
      clients.push(client);
      return client;
    },
    close,
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

export function write(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}

export function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function cleanup(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Runs the CLI to completion (e.g. `kavach mcp approve-tools`). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child: ChildProcess = spawn(process.execPath, [KAVACH, ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code: code ?? -1, stdout, stderr }));
  });
}

/** `kavach keygen` into `<dir>/keys` (the path returned); fails the test with its stderr if it fails. */
export async function keygen(dir: string): Promise<string> {
  const keys = join(dir, 'keys');
  const run = await runCli(['keygen', '--out', keys]);
  if (run.code !== 0) throw new Error(`kavach keygen failed (${run.code}): ${run.stderr}`);
  return keys;
}
