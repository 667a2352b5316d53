/**
 * One client's MCP server entry, as that client writes it, turned into a kavach.toml server — or
 * the reason it must stay with its client. Each client has its own dialect: field names, which
 * transports it means by `url`, and which `${…}` variables it fills in before starting a server.
 */
import { isAbsolute, resolve } from 'node:path';

export const CLIENTS = ['claude-code', 'claude-desktop', 'codex', 'cursor', 'gemini', 'vscode'] as const;
export type ClientName = (typeof CLIENTS)[number];

export function isClientName(name: string): name is ClientName {
  return (CLIENTS as readonly string[]).includes(name);
}

/** A server as it goes into kavach.toml. */
export interface StdioServer {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

export interface RemoteServer {
  url: string;
  headers: Record<string, string>;
}

export type KavachServer = StdioServer | RemoteServer;

/** A server entry as the clients write it. */
export interface ClientServerEntry {
  [key: string]: unknown;
}

export interface Converted {
  server: KavachServer;
  /**
   * Variables the client fills in, handed to the proxy through its own entry's env (name → the
   * client's variable text, e.g. `KAVACH_INPUT_TOKEN` → `${input:token}`); kavach.toml reads them
   * as `${KAVACH_INPUT_TOKEN}`. The variable stays the client's: it prompts or resolves as before.
   */
  passEnv: Record<string, string>;
  /** Codex: variables it must pass to the proxy by name (its `env_vars`). */
  passVars: string[];
  /** Fields of the entry that mean nothing to the proxy (kept in the install record for uninstall). */
  dropped: string[];
  /** Codex: the entry's timeouts, so the proxy's entry waits as long as the slowest server did. */
  timeouts: { startup?: number; tool?: number };
}

export interface Dialect {
  client: ClientName;
  /** The project directory relative paths of a project/local/workspace entry are relative to. */
  projectDir?: string;
}

/** Fields each client's entries may carry that the proxy does not need (anything else is reported). */
const IGNORED: Record<ClientName, readonly string[]> = {
  'claude-code': ['type'],
  'claude-desktop': ['type'],
  codex: ['enabled', 'startup_timeout_sec', 'startup_timeout_ms', 'tool_timeout_sec'],
  cursor: ['type'],
  gemini: ['type', 'description'],
  vscode: ['type'],
};

/** The variables each client fills in that kavach.toml would not read the same way (none: nothing to route). */
const ROUTES: Record<ClientName, RegExp | undefined> = {
  'claude-code': /\$\{[A-Za-z_][A-Za-z0-9_]*:-[^}]*\}/,
  vscode: /\$\{[^}\s]+\}/,
  cursor: /\$\{[^}\s]+\}/,
  gemini: /\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*/,
  'claude-desktop': undefined,
  codex: undefined,
};

/** kavach.toml's own variable syntax: anything that matches it is read from the environment. */
const KAVACH_VARIABLE = /\$\{[A-Za-z_][A-Za-z0-9_]*\}/;

export function convertEntry(entry: unknown, dialect: Dialect): Converted | { reason: string } {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return { reason: 'not an object' };
  const e = entry as ClientServerEntry;
  const client = dialect.client;
  if (e.disabled === true || e.enabled === false)
    return { reason: 'disabled in the client: it does not run now, but enabled later it would run unguarded' };
  for (const filter of ['includeTools', 'excludeTools', 'enabled_tools', 'disabled_tools']) {
    if (filter in e)
      return {
        reason: `its \`${filter}\` tool filter would be lost (the proxy has no per-server filter; write the same as a policy, then move it by hand)`,
      };
  }
  if ('envFile' in e) return { reason: 'it reads `envFile`, which the proxy cannot load; put those variables in `env` first' };
  if (!ROUTES[client]) {
    // Checked on the entry as written, before the proxy adds `${NAME}` of its own (Codex env_vars).
    const literal = KAVACH_VARIABLE.exec(JSON.stringify(e))?.[0];
    if (literal !== undefined)
      return { reason: `it holds "${literal}", which ${client} passes on as written but kavach.toml would read from the environment` };
  }
  const passVars: string[] = [];
  const used = new Set<string>();
  let server: KavachServer;
  if (typeof e.command === 'string') {
    const args = stringList(e.args);
    const env = stringRecord(e.env);
    if (args === undefined) return { reason: '`args` is not a list of strings' };
    if (env === undefined) return { reason: '`env` holds values that are not strings' };
    used.add('command').add('args').add('env');
    if (client === 'codex' && e.env_vars !== undefined) {
      const names = stringList(e.env_vars);
      if (names === undefined) return { reason: '`env_vars` is not a list of strings' };
      for (const name of names) env[name] = `\${${name}}`;
      passVars.push(...names);
      used.add('env_vars');
    }
    const stdio: StdioServer = { command: e.command, args, env };
    if (e.cwd !== undefined) {
      if (typeof e.cwd !== 'string') return { reason: '`cwd` is not a string' };
      stdio.cwd = e.cwd;
      used.add('cwd');
    }
    const relative = relativePaths(stdio, dialect.projectDir);
    if (typeof relative === 'string') return { reason: relative };
    server = relative;
  } else {
    const remote = remoteServer(e, client, passVars, used);
    if (typeof remote === 'string') return { reason: remote };
    server = remote;
  }
  const variables = routeVariables(server, client);
  const dropped = Object.keys(e).filter((k) => !used.has(k) && !IGNORED[client].includes(k));
  const timeouts: Converted['timeouts'] = {};
  if (typeof e.startup_timeout_sec === 'number') timeouts.startup = e.startup_timeout_sec;
  if (typeof e.tool_timeout_sec === 'number') timeouts.tool = e.tool_timeout_sec;
  return { server: variables.server, passEnv: variables.passEnv, passVars, dropped, timeouts };
}

/** A remote entry in the client's dialect, or why the proxy cannot take it. */
function remoteServer(e: ClientServerEntry, client: ClientName, passVars: string[], used: Set<string>): KavachServer | string {
  // Gemini: `httpUrl` is Streamable HTTP and `url` is SSE unless `type` says http.
  const streamable = client === 'gemini' ? (typeof e.httpUrl === 'string' ? e.httpUrl : e.type === 'http' ? e.url : undefined) : e.url;
  if (typeof streamable !== 'string') {
    if (typeof e.url === 'string') return 'an SSE server: the proxy speaks Streamable HTTP to upstreams, not SSE';
    return 'neither `command` nor `url`';
  }
  if (e.type === 'sse' || (client !== 'gemini' && /\/sse\/?$/.test(streamable)))
    return 'an SSE server: the proxy speaks Streamable HTTP to upstreams, not SSE';
  used.add(client === 'gemini' && typeof e.httpUrl === 'string' ? 'httpUrl' : 'url');
  const headerField = client === 'codex' ? 'http_headers' : 'headers';
  const headers = stringRecord(e[headerField]);
  if (headers === undefined) return `\`${headerField}\` holds values that are not strings`;
  used.add(headerField);
  if (client === 'codex') {
    if (typeof e.bearer_token_env_var === 'string') {
      headers.Authorization = `Bearer \${${e.bearer_token_env_var}}`;
      passVars.push(e.bearer_token_env_var);
      used.add('bearer_token_env_var');
    }
    const fromEnv = stringRecord(e.env_http_headers);
    if (fromEnv === undefined) return '`env_http_headers` holds values that are not strings';
    for (const [header, name] of Object.entries(fromEnv)) {
      headers[header] = `\${${name}}`;
      passVars.push(name);
    }
    used.add('env_http_headers');
  }
  // No credential in the entry: the client most likely signs in with OAuth, which the proxy cannot.
  if (Object.keys(headers).length === 0)
    return 'a remote server with no credential in its entry: the client probably signs in to it with OAuth, which the proxy cannot do for it';
  return { url: streamable, headers };
}

/** `./bin/server` and a relative `cwd` mean "in the project": made absolute, or refused where there is none. */
function relativePaths(server: StdioServer, projectDir: string | undefined): StdioServer | string {
  const relCommand = /^\.\.?[\\/]/.test(server.command);
  const relCwd = server.cwd !== undefined && !isAbsolute(server.cwd) && !server.cwd.startsWith('$');
  if (!relCommand && !relCwd) return server;
  if (projectDir === undefined) return 'its command or cwd is a relative path, which depends on where the client starts it';
  const out = { ...server };
  if (relCommand) out.command = resolve(projectDir, server.command);
  if (relCwd && server.cwd !== undefined) out.cwd = resolve(projectDir, server.cwd);
  return out;
}

/**
 * Client variables, made to mean in kavach.toml what they meant in the client's config:
 * - Claude Code and the environment agree on `${NAME}` (the proxy inherits the client's
 *   environment); its `${NAME:-default}` is routed.
 * - VS Code (`${input:…}`, `${workspaceFolder}`, `${env:…}`), Cursor (`${env:…}`, `${userHome}`…)
 *   and Gemini (`$NAME`, `${NAME}`) fill variables in before starting a server: each is routed
 *   through the proxy's entry, where the client still fills it in.
 * - Claude Desktop and Codex fill nothing in: text kavach.toml would read as a variable cannot move.
 */
function routeVariables(server: KavachServer, client: ClientName): { server: KavachServer; passEnv: Record<string, string> } {
  const passEnv: Record<string, string> = {};
  const byText = new Map<string, string>();
  const route = (text: string): string => {
    const known = byText.get(text);
    if (known !== undefined) return `\${${known}}`;
    const stem = `KAVACH_${
      (text.replace(/^\$\{?|\}$/g, '').split(':-')[0] as string)
        .replace(/[^A-Za-z0-9]+/g, '_')
        .replace(/^_+|_+$/g, '')
        .toUpperCase()
        .slice(0, 40) || 'VAR'
    }`;
    let name = stem;
    for (let i = 2; name in passEnv; i++) name = `${stem}_${i}`;
    passEnv[name] = text;
    byText.set(text, name);
    return `\${${name}}`;
  };
  const pattern = ROUTES[client];
  if (pattern === undefined) return { server, passEnv };
  const rewrite = (s: string): string => s.replace(new RegExp(pattern.source, 'g'), route);
  return { server: mapStrings(server, rewrite), passEnv };
}

function mapStrings(server: KavachServer, f: (s: string) => string): KavachServer {
  const map = (r: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, f(v)]));
  if ('url' in server) return { url: f(server.url), headers: map(server.headers) };
  const out: StdioServer = { command: f(server.command), args: server.args.map(f), env: map(server.env) };
  if (server.cwd !== undefined) out.cwd = f(server.cwd);
  return out;
}

function stringList(v: unknown): string[] | undefined {
  if (v === undefined) return [];
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? [...(v as string[])] : undefined;
}

function stringRecord(v: unknown): Record<string, string> | undefined {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') return undefined;
    out[k] = x;
  }
  return out;
}
