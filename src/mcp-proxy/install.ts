/**
 * Planning `kavach mcp install|uninstall` for one server table of a client config: which entries
 * move behind the proxy (and as what), which stay and why, and the proxy's own entry. Pure: the
 * files are read and written by install-run.ts.
 */
import { convertEntry, type ClientName, type ClientServerEntry, type KavachServer } from './install-entries.ts';
import { isObject, serversKey, tableAt, withTable } from './install-clients.ts';

export { CLIENTS, type ClientName, type ClientServerEntry, type KavachServer } from './install-entries.ts';

/** The entry name the proxy takes in a client's user-scope table (other scopes: `kavach-<scope>`). */
export const PROXY_ENTRY = 'kavach';

/** How the client should start the proxy. */
export interface ProxyLaunch {
  command: string;
  args: string[];
}

export interface MovedServer {
  clientName: string;
  kavachName: string;
  original: ClientServerEntry;
  server: KavachServer;
  /** Fields of the original that the proxy does not use. */
  dropped: string[];
}

export interface InstallPlan {
  /** The client config after the change. */
  next: Record<string, unknown>;
  /** Servers moved behind the proxy, by their kavach name, with the original entry. */
  moved: MovedServer[];
  /** Entries left alone, and why: none of them is guarded. */
  skipped: { clientName: string; reason: string }[];
  /** Entries already behind kavach (the proxy's own). */
  proxies: string[];
}

export interface TableOptions {
  /** Where the table is in the document; default the client's top-level table. */
  at?: readonly string[];
  /** The proxy's entry name; default `kavach`. */
  entryName?: string;
  /** Relative paths of project-scoped entries are relative to this directory. */
  projectDir?: string;
  /** Names a client's own config switches off outside the server table (Gemini's `mcp.excluded`). */
  switchedOff?: (name: string) => string | undefined;
}

/**
 * Moves every server of one table behind one proxy entry. Idempotent: the proxy's own entry is
 * never wrapped, so a second run only takes servers added since the first.
 */
export function planInstall(
  doc: Record<string, unknown>,
  client: ClientName,
  launch: ProxyLaunch,
  takenNames: ReadonlySet<string>,
  opts: TableOptions = {},
): InstallPlan {
  const at = opts.at ?? [serversKey(client)];
  const entryName = opts.entryName ?? PROXY_ENTRY;
  const servers = tableAt(doc, at) ?? {};
  const nextServers: Record<string, unknown> = {};
  const moved: MovedServer[] = [];
  const skipped: InstallPlan['skipped'] = [];
  const proxies: string[] = [];
  const passEnv: Record<string, string> = {};
  const passVars = new Set<string>();
  const timeouts: { startup?: number; tool?: number } = {};
  const used = new Set(takenNames);
  for (const [name, entry] of Object.entries(servers)) {
    if (name === entryName || (isObject(entry) && isProxyEntry(entry))) {
      nextServers[name] = entry;
      proxies.push(name);
      continue;
    }
    const off = opts.switchedOff?.(name);
    const converted =
      off !== undefined
        ? { reason: off }
        : convertEntry(entry, opts.projectDir !== undefined ? { client, projectDir: opts.projectDir } : { client });
    if ('reason' in converted) {
      skipped.push({ clientName: name, reason: converted.reason });
      nextServers[name] = entry;
      continue;
    }
    const kavachName = uniqueName(name, used);
    used.add(kavachName);
    moved.push({
      clientName: name,
      kavachName,
      original: entry as ClientServerEntry,
      server: converted.server,
      dropped: converted.dropped,
    });
    Object.assign(passEnv, converted.passEnv);
    for (const v of converted.passVars) passVars.add(v);
    if (converted.timeouts.startup !== undefined) timeouts.startup = Math.max(timeouts.startup ?? 0, converted.timeouts.startup);
    if (converted.timeouts.tool !== undefined) timeouts.tool = Math.max(timeouts.tool ?? 0, converted.timeouts.tool);
  }
  if (moved.length > 0) {
    const existing = isObject(nextServers[entryName]) ? (nextServers[entryName] as Record<string, unknown>) : undefined;
    nextServers[entryName] = proxyEntry(client, launch, existing, { passEnv, passVars, timeouts });
  }
  return { next: withTable(doc, at, nextServers), moved, skipped, proxies };
}

/** The proxy's entry in the client's shape, carrying the variables the moved servers need. */
function proxyEntry(
  client: ClientName,
  launch: ProxyLaunch,
  existing: Record<string, unknown> | undefined,
  need: { passEnv: Record<string, string>; passVars: ReadonlySet<string>; timeouts: { startup?: number; tool?: number } },
): Record<string, unknown> {
  // An entry already under the proxy's name keeps its settings, never its command: whatever it ran
  // (a repository can ship one), the proxy is what runs under that name now.
  const entry: Record<string, unknown> = existing
    ? { ...withoutRemote(existing), ...launch }
    : client === 'vscode' || client === 'claude-code'
      ? { type: 'stdio', ...launch }
      : { ...launch };
  if (Object.keys(need.passEnv).length > 0) entry.env = { ...(isObject(entry.env) ? entry.env : {}), ...need.passEnv };
  if (need.passVars.size > 0) {
    const had = Array.isArray(entry.env_vars) ? entry.env_vars.filter((v): v is string => typeof v === 'string') : [];
    entry.env_vars = [...new Set([...had, ...need.passVars])];
  }
  for (const [key, value] of [
    ['startup_timeout_sec', need.timeouts.startup],
    ['tool_timeout_sec', need.timeouts.tool],
  ] as const) {
    if (value !== undefined) entry[key] = Math.max(typeof entry[key] === 'number' ? entry[key] : 0, value);
  }
  return entry;
}

/** Puts the original entries back and removes the proxy's; entries added since are kept. */
export function planUninstall(
  doc: Record<string, unknown>,
  client: ClientName,
  originals: Record<string, ClientServerEntry>,
  opts: Pick<TableOptions, 'at' | 'entryName'> = {},
): Record<string, unknown> {
  const at = opts.at ?? [serversKey(client)];
  const servers = { ...(tableAt(doc, at) ?? {}) };
  delete servers[opts.entryName ?? PROXY_ENTRY];
  for (const [name, entry] of Object.entries(originals)) servers[name] = entry;
  return withTable(doc, at, servers);
}

/** An entry that starts `kavach mcp --config …`, whatever it is called. */
export function isProxyEntry(entry: ClientServerEntry): boolean {
  const args = Array.isArray(entry?.args) ? (entry.args as unknown[]).map((a) => (typeof a === 'string' ? a : '')) : [];
  const command = typeof entry?.command === 'string' ? entry.command : '';
  // Where `mcp` stands: right after the kavach it runs. Anywhere else (`sh -c '…' mcp --config
  // kavach`) another program runs, and a server calling itself the proxy is not left unguarded.
  let at: number;
  if (KAVACH_COMMAND.test(command)) at = 0;
  else if (NODE_COMMAND.test(command) && KAVACH_SCRIPT.test(args[0] ?? '')) at = 1;
  else if (NPX_COMMAND.test(command)) {
    const pkg = args.findIndex((a) => KAVACH_PACKAGE.test(a));
    if (pkg < 0) return false;
    at = pkg + 1;
  } else return false;
  return args[at] === 'mcp' && args.includes('--config');
}

const KAVACH_COMMAND = /(^|[\\/])kavach(\.cmd|\.exe)?$/;
const NODE_COMMAND = /(^|[\\/])node(\.exe)?$/;
const KAVACH_SCRIPT = /(^|[\\/])kavach(\.m?js)?$/;
const NPX_COMMAND = /(^|[\\/])npx(\.cmd)?$/;
const KAVACH_PACKAGE = /^kavach(@[^/]*)?$/;

/** An entry without what makes it a remote server's (a url and its type), to be a stdio one. */
function withoutRemote(entry: Record<string, unknown>): Record<string, unknown> {
  const { url: _url, httpUrl: _httpUrl, serverUrl: _serverUrl, ...rest } = entry;
  if (rest.type !== undefined) rest.type = 'stdio';
  return rest;
}

/** Client names may hold spaces or dots; kavach server names become tool-name prefixes. */
export function uniqueName(name: string, used: ReadonlySet<string>): string {
  let base =
    name
      .replace(/[^a-zA-Z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 28) || 'server';
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
      (lcs[i] as number[])[j] =
        a[i] === b[j]
          ? ((lcs[i + 1] as number[])[j + 1] as number) + 1
          : Math.max((lcs[i + 1] as number[])[j] as number, (lcs[i] as number[])[j + 1] as number);
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
