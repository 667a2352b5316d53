import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { parseConfigText } from '../../mcp-proxy/config.ts';
import {
  CLIENTS, clientConfigPath, lineDiff, planInstall, planUninstall,
  type ClientName, type ClientServerEntry, type ProxyLaunch,
} from '../../mcp-proxy/install.ts';
import { InputError, runCommand, UsageError } from '../args.ts';

const USAGE = `usage:
  kavach mcp install   --client claude-desktop|cursor|claude-code|vscode [--config kavach.toml] [--file PATH] [--dry-run]
  kavach mcp uninstall --client claude-desktop|cursor|claude-code|vscode [--file PATH] [--dry-run]
install moves every MCP server of the client's config into kavach.toml and puts one "kavach"
entry in their place (a backup is written first); uninstall puts the original entries back.
`;

const SPECS = {
  install: {
    command: 'kavach mcp install', usage: USAGE,
    options: { client: 'string', config: 'string', file: 'string', 'dry-run': 'boolean' },
  },
  uninstall: {
    command: 'kavach mcp uninstall', usage: USAGE,
    options: { client: 'string', file: 'string', 'dry-run': 'boolean' },
  },
} as const;

interface Sidecar {
  client: ClientName;
  config: string;
  originals: Record<string, ClientServerEntry>;
}

const out = (s: string): void => void process.stdout.write(s);

export function installCommand(sub: 'install' | 'uninstall', argv: string[]): Promise<number> {
  if (sub === 'install') {
    return runCommand(SPECS.install, argv, ({ options: o }) => start('install', o.client, o.file, o.config, o['dry-run'] === true));
  }
  return runCommand(SPECS.uninstall, argv, ({ options: o }) => start('uninstall', o.client, o.file, undefined, o['dry-run'] === true));
}

function start(sub: 'install' | 'uninstall', client: string | undefined, file: string | undefined, config: string | undefined, dryRun: boolean): Promise<number> {
  if (client === undefined) throw new UsageError(`--client ${CLIENTS.join('|')} is required`);
  if (!isClient(client)) throw new UsageError(`--client ${client}: not one of ${CLIENTS.join(', ')}`);
  return apply(sub, client, file, config, dryRun);
}

const isClient = (name: string): name is ClientName => (CLIENTS as readonly string[]).includes(name);

async function apply(sub: 'install' | 'uninstall', client: ClientName, fileFlag: string | undefined, configFlag: string | undefined, dryRun: boolean): Promise<number> {
  const file = resolve(fileFlag ?? clientConfigPath(client));
  const doc = await readJson(file);
  if (typeof doc === 'string') {
    process.stderr.write(`kavach mcp ${sub}: ${doc}\n`);
    return 1;
  }
  const sidecarPath = `${file}.kavach.json`;
  const sidecar = existsSync(sidecarPath) ? await readSidecar(sidecarPath) : undefined;
  const before = `${JSON.stringify(doc, null, 2)}\n`;

  if (sub === 'uninstall') {
    if (!sidecar) {
      out(`nothing to undo: ${file} was not rewritten by kavach mcp install (no ${sidecarPath})\n`);
      return 0;
    }
    const next = planUninstall(doc, client, sidecar.originals);
    const after = `${JSON.stringify(next, null, 2)}\n`;
    out(lineDiff(before, after, { a: file, b: `${file} (uninstalled)` }));
    if (dryRun) return 0;
    await backup(file);
    await atomicWrite(file, after);
    await rm(sidecarPath, { force: true });
    out(`restored ${Object.keys(sidecar.originals).length} server(s) in ${file}; ${sidecar.config} is left as it is\n`);
    return 0;
  }

  const configPath = resolve(configFlag ?? sidecar?.config ?? resolve(dirname(file), 'kavach.toml'));
  const kavachText = existsSync(configPath) ? await readFile(configPath, 'utf8') : undefined;
  const kavachDoc = kavachText !== undefined ? (parseToml(kavachText) as Record<string, unknown>) : starterConfig();
  const kavachServers = ((kavachDoc.servers ??= {}) as Record<string, unknown>);
  const plan = planInstall(doc, client, launch(configPath), new Set(Object.keys(kavachServers)));
  for (const s of plan.skipped) out(`left alone: ${s.clientName} (${s.reason})\n`);
  if (plan.moved.length === 0) {
    out(`${file}: nothing to do; every server already runs behind kavach\n`);
    return 0;
  }
  for (const m of plan.moved) kavachServers[m.kavachName] = m.server;
  const nextKavach = stringifyToml(kavachDoc);
  // Never write a config the proxy would then refuse to start with.
  parseConfigText(nextKavach, 'toml', { file: configPath, env: new Proxy({}, { get: (_t, k) => (typeof k === 'string' ? `\${${k}}` : undefined) }) });
  const after = `${JSON.stringify(plan.next, null, 2)}\n`;
  out(lineDiff(before, after, { a: file, b: `${file} (behind kavach)` }));
  out(lineDiff(kavachText ?? '', nextKavach, { a: configPath, b: `${configPath} (new)` }));
  if (dryRun) return 0;

  await mkdir(dirname(configPath), { recursive: true });
  if (kavachText === undefined) await writeStarterPolicy(resolve(dirname(configPath), 'kavach-policy.toml'));
  await atomicWrite(configPath, nextKavach, 0o600);
  await backup(file);
  const originals = { ...(sidecar?.originals ?? {}) };
  for (const m of plan.moved) originals[m.clientName] = m.original;
  await atomicWrite(sidecarPath, `${JSON.stringify({ client, config: configPath, originals } satisfies Sidecar, null, 2)}\n`, 0o600);
  await atomicWrite(file, after);
  out(`moved ${plan.moved.map((m) => m.clientName).join(', ')} behind kavach (${configPath}); restart ${client} to use it\n`);
  if (kavachText === undefined) out('kavach.toml starts in observe mode: calls are permitted and reported; write policies, then set observe_only = false\n');
  return 0;
}

function launch(configPath: string): ProxyLaunch {
  // Absolute paths: desktop clients start servers with a minimal PATH.
  const bin = fileURLToPath(new URL('../../../bin/kavach.js', import.meta.url));
  return { command: process.execPath, args: [bin, 'mcp', '--config', configPath] };
}

function starterConfig(): Record<string, unknown> {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: keep the default
  }
  return {
    gate: { policy: 'kavach-policy.toml', observe_only: true },
    identity: { principal_id: `${user}@${hostname()}`, principal_kind: 'agent', roles: [] },
    servers: {},
  };
}

async function writeStarterPolicy(path: string): Promise<void> {
  if (existsSync(path)) return;
  await writeFile(path, `# Kavach policy for the MCP proxy. Tools are "<server>.<tool>" (see policies/fs.toml).
# With no policy every call is refused; kavach.toml starts in observe mode so nothing breaks
# while you write them.

# [[policy]]
# name = "read-only-fs"
# effect = "permit"
# conditions = [{ action = "fs.read_*" }, { path_within = { field = "path", roots = ["/home/me/work"] } }]
`, { mode: 0o600 });
}

/** The client's config, or why it is not a JSON object (exit 1); unreadable is exit 2. */
async function readJson(file: string): Promise<Record<string, unknown> | string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (use --file PATH)`);
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return `${file} is not a JSON object`;
    return doc as Record<string, unknown>;
  } catch (err) {
    return `${file} is not plain JSON (${(err as Error).message}); remove comments and trailing commas first`;
  }
}

/** What an earlier install moved, to put back; a damaged record is said so, never guessed around. */
async function readSidecar(path: string): Promise<Sidecar> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text) as Sidecar;
  } catch (err) {
    throw new InputError(`${path} (what kavach mcp install moved) is not JSON: ${(err as Error).message}`);
  }
}

async function backup(file: string): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const to = `${file}.kavach-backup-${stamp}`;
  await copyFile(file, to);
  out(`backup: ${to}\n`);
}

async function atomicWrite(path: string, text: string, mode?: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  // Keep the file's own permissions when replacing it (client configs may hold tokens).
  const keep = mode ?? (await stat(path).then((s) => s.mode & 0o777, () => undefined));
  await writeFile(tmp, text, keep !== undefined ? { mode: keep } : {});
  await rename(tmp, path);
}
