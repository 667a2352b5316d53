import { homedir } from 'node:os';
import { join } from 'node:path';

export const CLIENTS = ['claude-desktop', 'cursor', 'claude-code', 'vscode'] as const;
export type ClientName = (typeof CLIENTS)[number];

/** The entry name the proxy takes in the client's config. */
export const PROXY_ENTRY = 'kavach';

/** Where each client keeps its MCP servers by default, and under which key. */
export function clientConfigPath(client: ClientName, env: NodeJS.ProcessEnv = process.env, platform = process.platform, cwd = process.cwd()): string {
  const home = env.HOME ?? homedir();
  switch (client) {
    case 'claude-desktop':
      if (platform === 'darwin') return join(home, 'Library/Application Support/Claude/claude_desktop_config.json');
      if (platform === 'win32') return join(env.APPDATA ?? join(home, 'AppData/Roaming'), 'Claude/claude_desktop_config.json');
      return join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'Claude/claude_desktop_config.json');
    case 'cursor':
      return join(home, '.cursor/mcp.json');
    case 'claude-code':
      return join(home, '.claude.json');
    case 'vscode':
      return join(cwd, '.vscode/mcp.json');
  }
}

/** VS Code calls the table `servers`; the others `mcpServers`. */
export function serversKey(client: ClientName): 'servers' | 'mcpServers' {
  return client === 'vscode' ? 'servers' : 'mcpServers';
}

/** A server entry as the clients write it (only the fields the proxy can take over). */
export interface ClientServerEntry {
  type?: string;
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  url?: string;
  headers?: Record<string, string>;
  [key: string]: unknown;
}

/** A server as it goes into kavach.toml. */
export type KavachServer =
  | { command: string; args: string[]; env: Record<string, string>; cwd?: string }
  | { url: string; headers: Record<string, string> };

export interface InstallPlan {
  /** The client config after the change. */
  next: Record<string, unknown>;
  /** Servers moved behind the proxy, by their kavach name, with the original entry. */
  moved: { clientName: string; kavachName: string; original: ClientServerEntry; server: KavachServer }[];
  /** Entries left alone, and why. */
  skipped: { clientName: string; reason: string }[];
}

/** How the client should start the proxy. */
export interface ProxyLaunch {
  command: string;
  args: string[];
}

/**
 * Moves every server of a client config behind one proxy entry. Idempotent: the proxy's own entry
 * is never wrapped, so a second run only takes servers added since the first.
 */
export function planInstall(doc: Record<string, unknown>, client: ClientName, launch: ProxyLaunch, takenNames: ReadonlySet<string>): InstallPlan {
  const key = serversKey(client);
  const servers = (doc[key] ?? {}) as Record<string, ClientServerEntry>;
  if (typeof servers !== 'object' || Array.isArray(servers)) throw new Error(`"${key}" in the client config is not an object`);
  const nextServers: Record<string, unknown> = {};
  const moved: InstallPlan['moved'] = [];
  const skipped: InstallPlan['skipped'] = [];
  const used = new Set(takenNames);
  for (const [name, entry] of Object.entries(servers)) {
    if (name === PROXY_ENTRY || isProxyEntry(entry)) {
      nextServers[name] = entry;
      continue;
    }
    const server = clientVariable(entry, client) ?? toKavachServer(entry);
    if (typeof server === 'string') {
      skipped.push({ clientName: name, reason: server });
      nextServers[name] = entry;
      continue;
    }
    const kavachName = uniqueName(name, used);
    used.add(kavachName);
    moved.push({ clientName: name, kavachName, original: entry, server });
  }
  const proxyEntry: Record<string, unknown> = client === 'vscode' || client === 'claude-code' ? { type: 'stdio', ...launch } : { ...launch };
  if (moved.length > 0 || !(PROXY_ENTRY in nextServers)) nextServers[PROXY_ENTRY] = nextServers[PROXY_ENTRY] ?? proxyEntry;
  return { next: { ...doc, [key]: nextServers }, moved, skipped };
}

/** Puts the original entries back and removes the proxy's; entries added since are kept. */
export function planUninstall(doc: Record<string, unknown>, client: ClientName, originals: Record<string, ClientServerEntry>): Record<string, unknown> {
  const key = serversKey(client);
  const servers = { ...((doc[key] ?? {}) as Record<string, unknown>) };
  delete servers[PROXY_ENTRY];
  for (const [name, entry] of Object.entries(originals)) servers[name] = entry;
  return { ...doc, [key]: servers };
}

export function isProxyEntry(entry: ClientServerEntry): boolean {
  const args = Array.isArray(entry?.args) ? entry.args : [];
  const i = args.indexOf('mcp');
  return i >= 0 && args.includes('--config') && (args.some((a) => /kavach(\.js)?$/.test(a)) || /kavach$/.test(entry.command ?? ''));
}

/**
 * Why an entry must stay with its client: it uses a `${…}` variable the proxy cannot fill in the
 * same way. Only Claude Code's `${NAME}` means what it means in kavach.toml (the environment).
 */
function clientVariable(entry: ClientServerEntry, client: ClientName): string | undefined {
  const pattern = client === 'claude-code' ? /\$\{(?![A-Za-z_][A-Za-z0-9_]*\})[^}]*\}?/ : /\$\{[^}]*\}?/;
  const found = pattern.exec(JSON.stringify(entry))?.[0];
  if (found === undefined) return undefined;
  if (client === 'vscode') return 'uses VS Code variables (${input:…}, ${workspaceFolder}…) that only VS Code can fill in';
  return `uses ${found}, which the proxy cannot fill in as ${client} does`;
}

function toKavachServer(entry: ClientServerEntry): KavachServer | string {
  if (entry === null || typeof entry !== 'object') return 'not an object';
  if (entry.disabled === true) return 'disabled in the client';
  if (typeof entry.command === 'string') {
    const server: KavachServer = { command: entry.command, args: strings(entry.args), env: stringMap(entry.env) };
    if (typeof entry.cwd === 'string') server.cwd = entry.cwd;
    return server;
  }
  if (typeof entry.url === 'string') {
    if (entry.type === 'sse' || /\/sse\/?$/.test(entry.url)) return 'SSE servers are not supported by the proxy (Streamable HTTP only)';
    return { url: entry.url, headers: stringMap(entry.headers) };
  }
  return 'neither command nor url';
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** Client names may hold spaces or dots; kavach server names become tool-name prefixes. */
export function uniqueName(name: string, used: ReadonlySet<string>): string {
  let base = name.replace(/[^a-zA-Z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 28) || 'server';
  if (base === PROXY_ENTRY) base = `${base}-upstream`;
  let candidate = base;
  for (let i = 2; used.has(candidate); i++) candidate = `${base}-${i}`;
  return candidate;
}

/** A minimal line diff (LCS) for showing what install/uninstall change. */
export function lineDiff(before: string, after: string, labels = { a: 'before', b: 'after' }): string {
  const a = before.split('\n');
  const b = after.split('\n');
  const n = a.length;
  const m = b.length;
  if (n * m > 4_000_000) return `--- ${labels.a}\n+++ ${labels.b}\n(the files differ; too large to diff)\n`;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      (lcs[i] as number[])[j] = a[i] === b[j] ? ((lcs[i + 1] as number[])[j + 1] as number) + 1 : Math.max((lcs[i + 1] as number[])[j] as number, (lcs[i] as number[])[j + 1] as number);
    }
  }
  const out = [`--- ${labels.a}`, `+++ ${labels.b}`];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (i < n && (j >= m || ((lcs[i + 1] as number[])[j] as number) >= ((lcs[i] as number[])[j + 1] as number))) {
      out.push(`- ${a[i]}`);
      i++;
    } else {
      out.push(`+ ${b[j]}`);
      j++;
    }
  }
  return `${out.join('\n')}\n`;
}
