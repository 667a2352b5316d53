import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/mcp-proxy/config.ts';
import { isProxyEntry, lineDiff, planInstall, uniqueName } from '../../src/mcp-proxy/install.ts';
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
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('-     "filesystem": {');
    expect(readFileSync(file, 'utf8')).toBe(original);
    expect(existsSync(config)).toBe(false);

    const run = await runCli(['mcp', 'install', '--client', 'claude-desktop', '--file', file, '--config', config]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('left alone: legacy (SSE servers are not supported');
    const after = JSON.parse(readFileSync(file, 'utf8')) as typeof ORIGINAL & { mcpServers: Record<string, { command: string; args: string[] }> };
    expect(after.globalShortcut).toBe('Ctrl+Space');
    expect(Object.keys(after.mcpServers).sort()).toEqual(['kavach', 'legacy']);
    expect(after.mcpServers.kavach?.args.slice(-3)).toEqual(['mcp', '--config', config]);
    expect(readdirSync(dir).some((f) => f.startsWith('claude_desktop_config.json.kavach-backup-'))).toBe(true);

    const loaded = await loadConfig(config);
    expect(loaded.gate.observeOnly).toBe(true);
    expect(loaded.servers.map((s) => s.name).sort()).toEqual(['filesystem', 'my-notes']);
    expect(loaded.servers.find((s) => s.name === 'my-notes')).toMatchObject({ command: '/usr/bin/notes-mcp', env: { NOTES_TOKEN: 'abc' } });

    const again = await runCli(['mcp', 'install', '--client', 'claude-desktop', '--file', file, '--config', config]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to do');

    const undo = await runCli(['mcp', 'uninstall', '--client', 'claude-desktop', '--file', file]);
    expect(undo.code, undo.stderr).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(ORIGINAL);
  });

  it('writes the VS Code shape (servers, type stdio)', () => {
    const plan = planInstall({ servers: { git: { type: 'stdio', command: 'uvx', args: ['mcp-server-git'] } }, inputs: [] }, 'vscode', { command: '/usr/bin/node', args: ['/opt/kavach/bin/kavach.js', 'mcp', '--config', '/c/kavach.toml'] }, new Set());
    expect(plan.next).toEqual({ servers: { kavach: { type: 'stdio', command: '/usr/bin/node', args: ['/opt/kavach/bin/kavach.js', 'mcp', '--config', '/c/kavach.toml'] } }, inputs: [] });
    expect(plan.moved[0]).toMatchObject({ kavachName: 'git', server: { command: 'uvx', args: ['mcp-server-git'], env: {} } });
    expect(isProxyEntry((plan.next.servers as Record<string, { args: string[] }>).kavach as { args: string[] })).toBe(true);
  });

  it('leaves VS Code entries with ${input:…} variables alone', () => {
    const doc = { servers: { gh: { type: 'stdio', command: 'gh-mcp', env: { TOKEN: '${input:token}' } } } };
    const plan = planInstall(doc, 'vscode', { command: 'node', args: ['kavach.js', 'mcp', '--config', '/c/k.toml'] }, new Set());
    expect(plan.moved).toEqual([]);
    expect(plan.skipped[0]?.reason).toContain('VS Code variables');
    expect((plan.next.servers as Record<string, unknown>).gh).toEqual(doc.servers.gh);
  });

  it('leaves entries with client-side variables the proxy cannot fill alone (Cursor ${env:…}, Claude Code ${VAR:-default})', () => {
    const launch = { command: 'node', args: ['kavach.js', 'mcp', '--config', '/c/k.toml'] };
    const cursor = planInstall({ mcpServers: { gh: { command: 'gh-mcp', env: { TOKEN: '${env:GH_TOKEN}' } }, git: { command: 'uvx', args: ['${userHome}/repo'] } } }, 'cursor', launch, new Set());
    expect(cursor.moved).toEqual([]);
    expect(cursor.skipped.map((s) => s.clientName)).toEqual(['gh', 'git']);
    expect(cursor.skipped[0]?.reason).toContain('${env:GH_TOKEN}');
    const code = planInstall({ mcpServers: { api: { type: 'http', url: '${API_URL:-https://api.example.com}/mcp' }, gh: { command: 'gh-mcp', env: { TOKEN: '${GH_TOKEN}' } } } }, 'claude-code', launch, new Set());
    // ${NAME} means the same to kavach.toml (read from the environment the client starts it with).
    expect(code.moved.map((m) => m.clientName)).toEqual(['gh']);
    expect(code.skipped.map((s) => s.clientName)).toEqual(['api']);
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
