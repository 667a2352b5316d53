/**
 * `kavach mcp install|uninstall`: reads every file a client keeps MCP servers in, plans each server
 * table (install.ts), shows the diffs, then writes kavach.toml (with keys, audit and a starter
 * policy the first time), a backup, an install record and the client's file. It never says that
 * everything is guarded while a server was left alone: each one is listed with its reason, and
 * the exit code is 1 unless the caller accepted that (`allowPartial`).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { parseConfig } from './config.ts';
import {
  CLIENT_SCOPES,
  clientFiles,
  clientTitle,
  fileGiven,
  homeOf,
  isObject,
  serversKey,
  tableAt,
  tablesIn,
  type ClientFile,
  type Scope,
  type ServerTable,
} from './install-clients.ts';
import type { ClientName, ClientServerEntry, KavachServer } from './install-entries.ts';
import { isProxyEntry, lineDiff, planInstall, planUninstall, type MovedServer, type ProxyLaunch } from './install.ts';
import { reportCommand, starterConfigText, starterFilesPlan, writeStarterFiles } from './install-starter.ts';
import { editTomlTables } from './install-toml.ts';

export interface InstallRequest {
  client: ClientName;
  scope?: Scope | undefined;
  /** The project whose project/workspace scope is meant; default `cwd`. */
  project?: string | undefined;
  /** One client file instead of the client's usual ones. */
  file?: string | undefined;
  /** The kavach.toml to use (only when one server table is being moved). */
  config?: string | undefined;
  dryRun: boolean;
  allowPartial: boolean;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  cwd: string;
  /** How the client starts the proxy (default: this node and this package's bin/kavach.js). */
  launch?: ProxyLaunch;
  out: (text: string) => void;
}

/**
 * A failure the command reports in one line: the command line is wrong (`usage`), a file cannot be
 * read (`input`), or a file holds what the install cannot work with (`refused`).
 */
export class InstallError extends Error {
  constructor(
    message: string,
    readonly kind: 'usage' | 'input' | 'refused' = 'refused',
  ) {
    super(message);
  }
}

interface RecordedTable {
  at: string[];
  entry: string;
  config: string;
  originals: Record<string, ClientServerEntry>;
}

/** `<client file>.kavach.json`: what install moved, so uninstall can put it back. */
interface InstallRecord {
  version: 2;
  client: ClientName;
  tables: RecordedTable[];
}

interface LoadedFile {
  file: ClientFile;
  text: string;
  doc: Record<string, unknown>;
  record: InstallRecord | undefined;
}

interface TablePlan {
  table: ServerTable;
  configPath: string;
  configText: string | undefined;
  nextConfigText: string;
  moved: MovedServer[];
}

/** How a person runs this kavach, and how a client should start it (absolute: clients start servers with a minimal PATH). */
export function defaultLaunch(configPath: string): ProxyLaunch {
  return { command: process.execPath, args: [kavachBin(), 'mcp', '--config', configPath] };
}

function kavachBin(): string {
  return fileURLToPath(new URL('../../bin/kavach.js', import.meta.url));
}

export async function runInstall(req: InstallRequest): Promise<number> {
  const loaded = await loadClientFiles(req);
  const skipped: { where: string; name: string; reason: string }[] = [];
  const plans: TablePlan[] = [];
  const nextDocs = new Map<LoadedFile, Record<string, unknown>>();
  const alreadyBehind: string[] = [];
  let anyServer = false;
  for (const file of loaded) {
    let doc = file.doc;
    for (const table of selectTables(req, file)) {
      const recorded = file.record?.tables.find((t) => sameAt(t.at, table.at));
      // A project's files, its install record among them, may come with a cloned repository: that
      // record does not choose which kavach.toml install writes (another client's, or the repo's own).
      const recordedConfig = table.project === undefined ? recorded?.config : undefined;
      const configPath = resolve(req.config ?? recordedConfig ?? join(homeOf(req.env), '.kavach', table.id, 'kavach.toml'));
      const configText = existsSync(configPath) ? await readFile(configPath, 'utf8') : undefined;
      const kavachDoc = parseKavachToml(configText ?? starterConfigText(table.label), configPath);
      const kavachServers = isObject(kavachDoc.servers) ? kavachDoc.servers : {};
      const launch = req.launch ?? defaultLaunch(configPath);
      const plan = planInstall(doc, req.client, launch, new Set(Object.keys(kavachServers)), {
        at: table.at,
        entryName: table.entryName,
        ...(table.project !== undefined ? { projectDir: table.project } : {}),
        ...(req.client === 'gemini' ? { switchedOff: geminiSwitchedOff(doc) } : {}),
      });
      anyServer ||= Object.keys(tableAt(doc, table.at) ?? {}).length > 0;
      for (const s of plan.skipped) skipped.push({ where: table.label, name: s.clientName, reason: s.reason });
      if (plan.moved.length === 0) {
        if (plan.proxies.length > 0) alreadyBehind.push(table.label);
        continue;
      }
      doc = req.client === 'gemini' ? allowEntry(plan.next, table.entryName) : plan.next;
      const nextServers = { ...kavachServers };
      for (const m of plan.moved) nextServers[m.kavachName] = withoutEmptyTables(m.server);
      const nextConfigText = editTomlTables(configText ?? starterConfigText(table.label), 'servers', kavachServers, nextServers, {
        ...kavachDoc,
        servers: nextServers,
      }).text;
      checkLoads(nextConfigText, configPath);
      plans.push({ table, configPath, configText, nextConfigText, moved: plan.moved });
    }
    if (doc !== file.doc) nextDocs.set(file, doc);
  }
  if (req.client === 'claude-code' && req.file === undefined && req.scope !== 'user' && req.scope !== 'local') {
    skipped.push(...(await otherProjects(req, loaded)));
  }
  if (req.config !== undefined && plans.length > 1) {
    throw new InstallError(
      `--config names one kavach.toml, but servers of ${plans.length} scopes would move (${plans.map((p) => p.table.label).join('; ')}); pick one with --scope or --file`,
      'usage',
    );
  }

  const fileTexts = new Map<LoadedFile, string>();
  for (const [file, next] of nextDocs) {
    const edited = serialise(file, next);
    fileTexts.set(file, edited.text);
    req.out(lineDiff(file.text, edited.text, { a: file.file.path, b: `${file.file.path} (behind kavach)` }));
    if (!edited.kept)
      req.out(
        `note: the comments and layout of ${file.file.path} cannot be kept (a table there is not written as [mcp_servers.NAME]); it is rewritten from its parsed form, and the backup keeps the original\n`,
      );
  }
  for (const p of plans) {
    req.out(
      lineDiff(p.configText ?? '', p.nextConfigText, {
        a: p.configPath,
        b: `${p.configPath} (${p.configText === undefined ? 'new' : 'updated'})`,
      }),
    );
    // A new kavach.toml names a policy file and a key written beside it: shown too, so a dry run hides nothing it would write.
    if (p.configText !== undefined) continue;
    const starter = starterFilesPlan(p.configPath);
    if (starter.policy) req.out(lineDiff('', starter.policy.text, { a: starter.policy.path, b: `${starter.policy.path} (new)` }));
    if (starter.keys) req.out(`a new signing key pair for the audit log: ${starter.keys.join(', ')}\n`);
  }

  if (!req.dryRun) {
    for (const p of plans) {
      await mkdir(resolve(p.configPath, '..'), { recursive: true, mode: 0o700 });
      if (p.configText === undefined) await writeStarterFiles(p.configPath);
      await atomicWrite(p.configPath, p.nextConfigText, 0o600);
    }
    for (const [file, text] of fileTexts) {
      req.out(`backup: ${await backup(file.file.path)}\n`);
      await writeRecord(
        file,
        req.client,
        plans.filter((p) => p.table.file === file.file.path),
      );
      await atomicWrite(file.file.path, text);
    }
  }

  const would = req.dryRun ? 'would move' : 'moved';
  for (const p of plans) {
    req.out(`${would} ${p.moved.map((m) => m.clientName).join(', ')} of ${p.table.label} behind kavach: ${p.configPath}\n`);
    for (const m of p.moved)
      if (m.dropped.length > 0) req.out(`  ${m.clientName}: not carried over (the proxy does not use them): ${m.dropped.join(', ')}\n`);
  }
  for (const s of skipped) req.out(`left alone, NOT guarded: ${s.name} in ${s.where}: ${s.reason}\n`);
  if (plans.length === 0 && skipped.length === 0) {
    if (!anyServer && alreadyBehind.length === 0) req.out(`no MCP servers found in ${loaded.map((f) => f.file.path).join(', ')}\n`);
    else req.out(`nothing to do: every server already runs behind kavach (${alreadyBehind.join('; ')})\n`);
  }
  if (plans.length > 0) for (const note of clientNotes(req.client, plans)) req.out(`${note}\n`);
  if (skipped.length > 0) {
    req.out(
      `${skipped.length} server(s) left alone and NOT guarded (listed above)${req.allowPartial ? '; accepted with --allow-partial' : '; exit 1 (pass --allow-partial to accept this)'}\n`,
    );
  }
  // Last, so it is what the reader is left with: how to see what observe mode let through.
  for (const p of plans) {
    const command = reportFor(p);
    if (command !== undefined) req.out(`${p.table.label}: what enforcement would refuse, as a page:\n  ${command}\n`);
    else req.out(`${p.configPath} has no [audit] section: nothing it lets through is recorded\n`);
  }
  return skipped.length > 0 && !req.allowPartial ? 1 : 0;
}

export async function runUninstall(req: InstallRequest): Promise<number> {
  const loaded = (await loadClientFiles(req)).filter((f) => f.record !== undefined);
  if (loaded.length === 0) {
    req.out(`nothing to undo: no ${clientTitle(req.client)} config here was rewritten by kavach mcp install\n`);
    return 0;
  }
  for (const file of loaded) {
    const record = file.record as InstallRecord;
    const chosen = new Set(selectTables(req, file).map((t) => JSON.stringify(t.at)));
    const undo = record.tables.filter((t) => chosen.has(JSON.stringify(t.at)));
    if (undo.length === 0) continue;
    let doc = file.doc;
    for (const t of undo) doc = disallowEntry(planUninstall(doc, req.client, t.originals, { at: t.at, entryName: t.entry }), t.entry);
    const edited = serialise(file, doc);
    req.out(lineDiff(file.text, edited.text, { a: file.file.path, b: `${file.file.path} (uninstalled)` }));
    if (req.dryRun) continue;
    req.out(`backup: ${await backup(file.file.path)}\n`);
    await atomicWrite(file.file.path, edited.text);
    const left = record.tables.filter((t) => !undo.includes(t));
    const recordPath = `${file.file.path}.kavach.json`;
    if (left.length === 0) await rm(recordPath, { force: true });
    else await atomicWrite(recordPath, `${JSON.stringify({ ...record, tables: left }, null, 2)}\n`, 0o600);
    for (const t of undo)
      req.out(`restored ${Object.keys(t.originals).join(', ') || 'no server'} in ${file.file.path}; ${t.config} is left as it is\n`);
  }
  return 0;
}

async function loadClientFiles(req: InstallRequest): Promise<LoadedFile[]> {
  if (req.scope !== undefined && !CLIENT_SCOPES[req.client].includes(req.scope)) {
    throw new InstallError(
      `--scope ${req.scope}: ${clientTitle(req.client)} has the scopes ${CLIENT_SCOPES[req.client].join(', ')}`,
      'usage',
    );
  }
  const files =
    req.file !== undefined
      ? [fileGiven(req.client, resolve(req.cwd, req.file), req.scope)]
      : clientFiles(req.client, { env: req.env, platform: req.platform, project: resolve(req.cwd, req.project ?? '.') });
  const loaded: LoadedFile[] = [];
  for (const file of files) {
    if (!existsSync(file.path)) continue;
    const text = await readFile(file.path, 'utf8');
    loaded.push({ file, text, doc: parseClientFile(file, text), record: await readRecord(`${file.path}.kavach.json`, req.client) });
  }
  if (loaded.length === 0)
    throw new InstallError(
      `no ${clientTitle(req.client)} config found at ${files.map((f) => f.path).join(' or ')} (use --file PATH)`,
      'input',
    );
  return loaded;
}

function selectTables(req: InstallRequest, file: LoadedFile): ServerTable[] {
  return tablesIn(req.client, file.file, file.doc).filter((t) => req.scope === undefined || t.scope === req.scope);
}

function parseClientFile(file: ClientFile, text: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = file.format === 'toml' ? parseToml(text) : JSON.parse(text);
  } catch (err) {
    const hint = file.format === 'json' ? '; remove comments and trailing commas first' : '';
    throw new InstallError(`${file.path} is not valid ${file.format.toUpperCase()} (${(err as Error).message})${hint}`);
  }
  if (!isObject(doc)) throw new InstallError(`${file.path} is not a ${file.format.toUpperCase()} object`);
  return doc;
}

function parseKavachToml(text: string, path: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new InstallError(`${path} is not valid TOML: ${(err as Error).message}`);
  }
}

/** The client file's new text: JSON rewritten whole; TOML edited in place where it can be. */
function serialise(file: LoadedFile, next: Record<string, unknown>): { text: string; kept: boolean } {
  if (file.file.format === 'json') return { text: `${JSON.stringify(next, null, 2)}\n`, kept: true };
  const key = serversKey('codex');
  const before = isObject(file.doc[key]) ? file.doc[key] : {};
  const after = isObject(next[key]) ? next[key] : {};
  return editTomlTables(file.text, key, before, after, next);
}

async function readRecord(path: string, client: ClientName): Promise<InstallRecord | undefined> {
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new InstallError(
      `${path} (what kavach mcp install moved) is not JSON: ${(err as Error).message}; restore from the backup next to it`,
    );
  }
  if (!isObject(raw)) throw new InstallError(`${path} (what kavach mcp install moved) is not a JSON object`);
  // Records before version 2 held one table: the client's top-level one.
  if (raw.version === undefined && typeof raw.config === 'string' && isObject(raw.originals)) {
    return {
      version: 2,
      client,
      tables: [
        { at: [serversKey(client)], entry: 'kavach', config: raw.config, originals: raw.originals as Record<string, ClientServerEntry> },
      ],
    };
  }
  if (raw.version !== 2 || !Array.isArray(raw.tables)) throw new InstallError(`${path} is not an install record this kavach can read`);
  return raw as unknown as InstallRecord;
}

async function writeRecord(file: LoadedFile, client: ClientName, plans: TablePlan[]): Promise<void> {
  const tables = [...(file.record?.tables ?? [])];
  for (const p of plans) {
    let t = tables.find((x) => sameAt(x.at, p.table.at));
    if (!t) tables.push((t = { at: p.table.at, entry: p.table.entryName, config: p.configPath, originals: {} }));
    t.config = p.configPath;
    for (const m of p.moved) t.originals[m.clientName] = m.original;
  }
  const record: InstallRecord = { version: 2, client, tables };
  await atomicWrite(`${file.file.path}.kavach.json`, `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** Claude Code projects whose `.mcp.json` this install does not touch: named, never passed over. */
async function otherProjects(req: InstallRequest, loaded: LoadedFile[]): Promise<{ where: string; name: string; reason: string }[]> {
  const user = loaded.find((f) => f.file.scope === 'user');
  const projects = user && isObject(user.doc.projects) ? Object.keys(user.doc.projects) : [];
  const here = resolve(req.cwd, req.project ?? '.');
  const found: { where: string; name: string; reason: string }[] = [];
  for (const project of projects) {
    const path = join(project, '.mcp.json');
    if (resolve(project) === here || !existsSync(path)) continue;
    let servers: Record<string, unknown> = {};
    try {
      const doc = JSON.parse(await readFile(path, 'utf8')) as unknown;
      servers = isObject(doc) && isObject(doc.mcpServers) ? doc.mcpServers : {};
    } catch (err) {
      found.push({
        where: `Claude Code, project scope of ${project}`,
        name: path,
        reason: `cannot be read as JSON (${(err as Error).message})`,
      });
      continue;
    }
    for (const [name, entry] of Object.entries(servers)) {
      if (isObject(entry) && isProxyEntry(entry)) continue;
      found.push({
        where: `Claude Code, project scope of ${project} (${path})`,
        name,
        reason: `another project: run \`kavach mcp install --client claude-code --project ${project}\``,
      });
    }
  }
  return found;
}

/** Gemini switches servers off outside their table: `mcp.excluded`, or a `mcp.allowed` list without them. */
function geminiSwitchedOff(doc: Record<string, unknown>): (name: string) => string | undefined {
  const mcp = isObject(doc.mcp) ? doc.mcp : {};
  return (name) => {
    if (Array.isArray(mcp.excluded) && mcp.excluded.includes(name))
      return 'excluded in settings (mcp.excluded): it does not run now, but included later it would run unguarded';
    if (Array.isArray(mcp.allowed) && !mcp.allowed.includes(name))
      return 'not in mcp.allowed: it does not run now, but allowed later it would run unguarded';
    return undefined;
  };
}

/** With a Gemini `mcp.allowed` list, the proxy's entry must be on it to run at all. */
function allowEntry(doc: Record<string, unknown>, entry: string): Record<string, unknown> {
  if (!isObject(doc.mcp) || !Array.isArray(doc.mcp.allowed) || doc.mcp.allowed.includes(entry)) return doc;
  return { ...doc, mcp: { ...doc.mcp, allowed: [...(doc.mcp.allowed as unknown[]), entry] } };
}

function disallowEntry(doc: Record<string, unknown>, entry: string): Record<string, unknown> {
  if (!isObject(doc.mcp) || !Array.isArray(doc.mcp.allowed) || !doc.mcp.allowed.includes(entry)) return doc;
  return { ...doc, mcp: { ...doc.mcp, allowed: (doc.mcp.allowed as unknown[]).filter((x) => x !== entry) } };
}

function clientNotes(client: ClientName, plans: TablePlan[]): string[] {
  const notes = [`restart ${clientTitle(client)} to use it`];
  if (client === 'claude-code') {
    notes.push(
      'Claude Code names the tools mcp__<entry>__<server>__<tool> now: permission rules written for mcp__<server>__… no longer match them (re-check any deny rule)',
    );
    if (plans.some((p) => p.table.scope === 'project')) {
      notes.push(
        '.mcp.json is usually committed: its kavach-project entry holds absolute paths of this machine, and Claude Code asks once to approve the new project server',
      );
    }
  }
  if (plans.some((p) => p.moved.some((m) => /\$\{KAVACH_/.test(JSON.stringify(m.server))))) {
    notes.push(
      `variables the client fills in (\${input:…}, \${workspaceFolder}, \${env:…}) now reach the proxy through its entry's env (KAVACH_…), and kavach.toml reads them from there`,
    );
  }
  return notes;
}

function reportFor(p: TablePlan): string | undefined {
  const doc = parseToml(p.nextConfigText) as Record<string, unknown>;
  const audit = isObject(doc.audit) && typeof doc.audit.path === 'string' ? doc.audit.path : undefined;
  const keys = isObject(doc.keys) && typeof doc.keys.path === 'string' ? doc.keys.path : undefined;
  return reportCommand(p.configPath, audit, keys, [process.execPath, kavachBin()]);
}

/** `env = {}` and `headers = {}` are the defaults: writing them only adds empty tables. */
function withoutEmptyTables(server: KavachServer): Record<string, unknown> {
  return Object.fromEntries(Object.entries(server).filter(([, v]) => !(isObject(v) && Object.keys(v).length === 0)));
}

function sameAt(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Never write a config the proxy would then refuse to start with. Its variables are filled in by
 * the client at start, so here each stands for a plausible value: a URL where a string starts with
 * one (`\${KAVACH_API_BASE_URL}/mcp`), a word elsewhere.
 */
function checkLoads(text: string, configPath: string): void {
  const fill = (v: unknown): unknown => {
    if (typeof v === 'string')
      return v.replace(/^\$\{[A-Za-z_][A-Za-z0-9_]*\}/, 'https://example.invalid').replace(/\$\{[A-Za-z_][A-Za-z0-9_]*\}/g, 'x');
    if (Array.isArray(v)) return v.map(fill);
    if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  try {
    parseConfig(fill(parseToml(text)), { file: configPath, env: {} });
  } catch (err) {
    throw new InstallError(`the kavach.toml it would write (${configPath}) would not load: ${(err as Error).message}; nothing was written`);
  }
}

async function backup(file: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const to = `${file}.kavach-backup-${stamp}`;
  await copyFile(file, to);
  return to;
}

async function atomicWrite(path: string, text: string, mode?: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  // Keep the file's own permissions when replacing it (client configs may hold tokens).
  const keep =
    mode ??
    (await stat(path).then(
      (s) => s.mode & 0o777,
      () => undefined,
    ));
  await writeFile(tmp, text, keep !== undefined ? { mode: keep } : {});
  await rename(tmp, path);
}
