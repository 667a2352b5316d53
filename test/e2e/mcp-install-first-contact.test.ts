/**
 * First contact, end to end: `kavach mcp install` into a fresh HOME whose Claude Code keeps a
 * server in its default (local) scope; the client's rewritten entry is started the way the client
 * starts it; tools are listed and called through it; the audit log it kept verifies, shows which
 * file a write went to, and the command the install printed turns it into a report.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, describe, expect, it } from 'vitest';
import { FILESYSTEM, REPO, cleanup, runCli, tempDir, textOf, waitFor } from './proxy-harness.ts';

let root: string | undefined;
afterEach(() => cleanup(root));

/** Runs a command line the way a person pastes it into a shell (the report command has a glob). */
function shell(line: string, env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('sh', ['-c', line], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code: code ?? -1, out }));
  });
}

describe('kavach mcp install, then the client starts what it installed', () => {
  it('guards a Claude Code local-scope server, lists its tools through the proxy, and keeps an audit log that verifies', async () => {
    root = tempDir('kavach-first-contact-');
    const home = join(root, 'home');
    const project = join(root, 'project');
    const work = join(root, 'work');
    for (const d of [home, project, work]) mkdirSync(d, { recursive: true });
    const env = { HOME: home, USERPROFILE: home };
    // Claude Code's default scope: the server lives under projects[<dir>].mcpServers.
    writeFileSync(
      join(home, '.claude.json'),
      `${JSON.stringify(
        {
          numStartups: 3,
          projects: {
            [project]: {
              allowedTools: [],
              mcpServers: { fs: { type: 'stdio', command: process.execPath, args: [FILESYSTEM, work], env: {} } },
              hasTrustDialogAccepted: true,
            },
          },
        },
        null,
        2,
      )}\n`,
    );

    const install = await runCli(['mcp', 'install', '--client', 'claude-code', '--project', project], env);
    expect(install.code, install.stdout + install.stderr).toBe(0);
    expect(install.stdout).toMatch(/moved fs of Claude Code, local scope of .* behind kavach/);
    const reportLine = install.stdout.trimEnd().split('\n').at(-1)?.trim() ?? '';
    expect(reportLine).toMatch(/ audit report .*mcp-\*\.jsonl --keys /);

    const claude = JSON.parse(readFileSync(join(home, '.claude.json'), 'utf8')) as {
      projects: Record<string, { mcpServers: Record<string, { command: string; args: string[]; env?: Record<string, string> }> }>;
    };
    const entry = claude.projects[project]?.mcpServers['kavach-local'];
    expect(entry, JSON.stringify(claude)).toBeDefined();
    expect(Object.keys(claude.projects[project]?.mcpServers ?? {})).toEqual(['kavach-local']);
    if (!entry) return;

    // As the client does it: the entry's command and args, its env over the client's own.
    const transport = new StdioClientTransport({
      command: entry.command,
      args: entry.args,
      cwd: project,
      stderr: 'pipe',
      env: { PATH: process.env.PATH ?? '', ...env, ...(entry.env ?? {}) },
    });
    let stderr = '';
    transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const client = new Client({ name: 'first-contact', version: '1.0.0' });
    await client.connect(transport, { timeout: 30_000 });
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toContain('fs__write_file');
      expect(tools).toContain('fs__read_text_file');
      // Observe mode with an empty policy: enforcement would refuse, the call goes through...
      const target = join(work, 'note.txt');
      const result = await client.callTool({ name: 'fs__write_file', arguments: { path: target, content: 'top secret body' } });
      expect(result.isError, textOf(result)).toBeFalsy();
      expect(readFileSync(target, 'utf8')).toBe('top secret body');
      // ...and a person can see that it would have been refused.
      await waitFor(
        'the observe line on stderr',
        () => /observe: would refuse fs\.write_file by \S+ \(NO_POLICY_MATCH/.test(stderr) || undefined,
      );
    } finally {
      await client.close();
      await transport.close();
    }

    const dir = join(home, '.kavach', readdirSync(join(home, '.kavach')).find((d) => d.startsWith('claude-code-local-')) as string);
    const logs = readdirSync(join(dir, 'audit')).filter((f) => /^mcp-\d+\.jsonl$/.test(f));
    expect(logs).toHaveLength(1);
    const log = join(dir, 'audit', logs[0] as string);
    await waitFor('the proxy to release its audit log', () => !existsSync(`${log}.lock`) || undefined);
    const verify = await runCli(['audit', 'verify', log, '--keys', join(dir, 'keys/public.json')]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);

    // record_args: the reviewer sees which file was written, not what was written.
    const records = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const write = records.find((r) => r.type === 'verdict' && r.action === 'fs.write_file');
    expect(write).toMatchObject({
      verdict: 'refuse',
      code: 'NO_POLICY_MATCH',
      observed: true,
      argsValue: { path: join(work, 'note.txt') },
      redacted: ['/content'],
    });
    expect(readFileSync(log, 'utf8')).not.toContain('top secret body');

    const report = await shell(reportLine, env);
    expect(report.code, report.out).toBe(0);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('fs.write_file');
  });
});
