/**
 * Where each client keeps its MCP servers: every scope, its file, and where in that file the
 * server table sits. A scope the installer does not know of is a server it would leave unguarded
 * without a word, so this is the one place that lists them.
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { ClientName } from './install-entries.ts';

export type Scope = 'user' | 'local' | 'project' | 'workspace';

export const CLIENT_SCOPES: Record<ClientName, readonly Scope[]> = {
  'claude-code': ['user', 'local', 'project'],
  'claude-desktop': ['user'],
  codex: ['user', 'project'],
  cursor: ['user', 'project'],
  gemini: ['user', 'project'],
  vscode: ['user', 'workspace'],
};

export interface ClientFile {
  path: string;
  format: 'json' | 'toml';
  /** The scope its top-level table has (a Claude Code `~/.claude.json` also holds local ones). */
  scope: Scope;
  /** The project this file belongs to (project and workspace scopes). */
  project?: string;
}

/** One server table: a scope of a client, in one file. */
export interface ServerTable {
  client: ClientName;
  scope: Scope;
  project?: string;
  file: string;
  /** Keys from the document's root to the table. */
  at: string[];
  /** The proxy's entry in this table; one name per scope, so no scope's entry hides another's. */
  entryName: string;
  /** Names kavach's own files for this table: `~/.kavach/<id>/kavach.toml`. */
  id: string;
  /** For people: `Claude Code, local scope of /home/alice/app`. */
  label: string;
}

const TITLES: Record<ClientName, string> = {
  'claude-code': 'Claude Code',
  'claude-desktop': 'Claude Desktop',
  codex: 'Codex',
  cursor: 'Cursor',
  gemini: 'Gemini CLI',
  vscode: 'VS Code',
};

export function clientTitle(client: ClientName): string {
  return TITLES[client];
}

export function homeOf(env: NodeJS.ProcessEnv): string {
  return env.HOME ?? env.USERPROFILE ?? homedir();
}

/** The table's key: VS Code calls it `servers`, Codex `mcp_servers`, the others `mcpServers`. */
export function serversKey(client: ClientName): string {
  return client === 'vscode' ? 'servers' : client === 'codex' ? 'mcp_servers' : 'mcpServers';
}

export interface Where {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** The project whose project/workspace scope is meant (default: the working directory). */
  project: string;
}

/** The files a client keeps servers in, by default. */
export function clientFiles(client: ClientName, where: Where): ClientFile[] {
  const home = homeOf(where.env);
  const project = resolve(where.project);
  const appData = where.env.APPDATA ?? join(home, 'AppData/Roaming');
  const xdg = where.env.XDG_CONFIG_HOME ?? join(home, '.config');
  const inProject = (rel: string, scope: Scope, format: 'json' | 'toml' = 'json'): ClientFile => ({
    path: join(project, rel),
    format,
    scope,
    project,
  });
  let files: ClientFile[];
  switch (client) {
    case 'claude-desktop': {
      const dir =
        where.platform === 'darwin'
          ? join(home, 'Library/Application Support/Claude')
          : where.platform === 'win32'
            ? join(appData, 'Claude')
            : join(xdg, 'Claude');
      files = [{ path: join(dir, 'claude_desktop_config.json'), format: 'json', scope: 'user' }];
      break;
    }
    case 'claude-code':
      files = [{ path: join(home, '.claude.json'), format: 'json', scope: 'user' }, inProject('.mcp.json', 'project')];
      break;
    case 'cursor':
      files = [{ path: join(home, '.cursor/mcp.json'), format: 'json', scope: 'user' }, inProject('.cursor/mcp.json', 'project')];
      break;
    case 'vscode': {
      const dir =
        where.platform === 'darwin'
          ? join(home, 'Library/Application Support/Code/User')
          : where.platform === 'win32'
            ? join(appData, 'Code/User')
            : join(xdg, 'Code/User');
      files = [{ path: join(dir, 'mcp.json'), format: 'json', scope: 'user' }, inProject('.vscode/mcp.json', 'workspace')];
      break;
    }
    case 'gemini':
      files = [{ path: join(home, '.gemini/settings.json'), format: 'json', scope: 'user' }, inProject('.gemini/settings.json', 'project')];
      break;
    case 'codex':
      files = [
        { path: join(where.env.CODEX_HOME ?? join(home, '.codex'), 'config.toml'), format: 'toml', scope: 'user' },
        inProject('.codex/config.toml', 'project', 'toml'),
      ];
      break;
  }
  // Run from the home directory, a project file is the user file: one table, not two.
  return files.filter((f, i) => files.findIndex((g) => g.path === f.path) === i);
}

/** What `--file PATH` means: a Claude Code `.mcp.json` is a project; any other file, its top level. */
export function fileGiven(client: ClientName, path: string, scope: Scope | undefined): ClientFile {
  const abs = resolve(path);
  const format = client === 'codex' || abs.endsWith('.toml') ? 'toml' : 'json';
  if (client === 'claude-code' && basename(abs) === '.mcp.json')
    return { path: abs, format, scope: 'project', project: resolve(abs, '..') };
  const own = scope === 'local' ? 'user' : (scope ?? 'user');
  return own === 'user' ? { path: abs, format, scope: own } : { path: abs, format, scope: own, project: resolve(abs, '..', '..') };
}

/** The server tables a client file holds (Claude Code's `~/.claude.json`: user, and local per project). */
export function tablesIn(client: ClientName, file: ClientFile, doc: Record<string, unknown>): ServerTable[] {
  const key = serversKey(client);
  const tables: ServerTable[] = [table(client, file.scope, file.path, [key], file.project)];
  if (client === 'claude-code' && file.scope === 'user' && isObject(doc.projects)) {
    for (const [project, settings] of Object.entries(doc.projects)) {
      if (isObject(settings) && settings.mcpServers !== undefined)
        tables.push(table(client, 'local', file.path, ['projects', project, 'mcpServers'], project));
    }
  }
  return tables;
}

function table(client: ClientName, scope: Scope, file: string, at: string[], project: string | undefined): ServerTable {
  const entryName = scope === 'user' ? 'kavach' : `kavach-${scope}`;
  const where = project !== undefined ? ` of ${project}` : '';
  const t: ServerTable = {
    client,
    scope,
    file,
    at,
    entryName,
    id: project !== undefined ? `${client}-${scope}-${slug(project)}` : client,
    label: `${TITLES[client]}, ${scope} scope${where} (${file})`,
  };
  if (project !== undefined) t.project = project;
  return t;
}

/** A readable, unique directory name for a project: its base name and a hash of its path. */
function slug(project: string): string {
  const name =
    basename(project)
      .replace(/[^A-Za-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 24) || 'project';
  return `${name}-${createHash('sha256').update(project).digest('hex').slice(0, 8)}`;
}

/** The table at `at` in a document (undefined when absent; an error when it is not an object). */
export function tableAt(doc: Record<string, unknown>, at: readonly string[]): Record<string, unknown> | undefined {
  let node: unknown = doc;
  for (const key of at) {
    if (!isObject(node)) return undefined;
    node = node[key];
  }
  if (node === undefined) return undefined;
  if (!isObject(node)) throw new Error(`"${at.join('.')}" is not an object`);
  return node;
}

/** A copy of `doc` with the table at `at` replaced (parents kept, created when missing). */
export function withTable(doc: Record<string, unknown>, at: readonly string[], value: Record<string, unknown>): Record<string, unknown> {
  const [head, ...rest] = at as [string, ...string[]];
  if (rest.length === 0) return { ...doc, [head]: value };
  const child = isObject(doc[head]) ? doc[head] : {};
  return { ...doc, [head]: withTable(child, rest, value) };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
