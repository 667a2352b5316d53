// examples/mcp/ ships in the package for people to copy: the proxy config loads with the real
// config loader (its commented-out sections too, once uncommented), its policy loads and guards
// both servers as it says, and the client snippets start the proxy with a config.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Gate, type Verdict } from '../../src/engine/index.ts';
import { globReadingWarnings } from '../../src/engine/policy/glob-readings.ts';
import { parsePolicyText } from '../../src/engine/policy/load.ts';
import { loadConfig, parseConfigText } from '../../src/mcp-proxy/config.ts';

const REPO = join(import.meta.dirname, '..', '..');
const DIR = join(REPO, 'examples', 'mcp');

const outcome = (v: Verdict): string =>
  v.kind === 'refuse' ? `${v.code}: ${v.reason}` : v.kind === 'permit' ? `permit:${v.policy}` : v.kind;

describe('examples/mcp/kavach.toml', () => {
  it('loads with the real config loader: both servers, its policy beside it', async () => {
    const config = await loadConfig(join(DIR, 'kavach.toml'), {});
    expect(config.gate.policy).toBe(join(DIR, 'policy.toml'));
    expect(config.identity).toEqual({ principalId: 'alice-laptop', principalKind: 'agent', roles: ['dev'] });
    expect(config.servers.map((s) => (s.kind === 'stdio' ? [s.name, s.command, ...s.args] : [s.name]))).toEqual([
      ['fs', 'npx', '-y', '@modelcontextprotocol/server-filesystem', '/home/alice/work'],
      ['everything', 'npx', '-y', '@modelcontextprotocol/server-everything'],
    ]);
  });

  it('every commented-out section loads too once uncommented', () => {
    const text = readFileSync(join(DIR, 'kavach.toml'), 'utf8');
    const uncommented = text
      .split('\n')
      .map((line) => (/^# (\[|[a-z_]+ = )/.test(line) ? line.slice(2) : line))
      .join('\n');
    expect(uncommented).not.toBe(text);
    const env = { KAVACH_KEY_PASSPHRASE: 'p', ALICE_APPROVER_TOKEN: 't'.repeat(32), REMOTE_TOKEN: 'r', CI_AGENT_TOKEN: 'c'.repeat(32) };
    const config = parseConfigText(uncommented, 'toml', { file: join(DIR, 'kavach.toml'), env });
    expect(config.keys?.path).toBe(join(DIR, 'keys/secret.key'));
    expect(config.audit?.path).toBe(join(DIR, 'audit/mcp.jsonl'));
    expect(config.servers.map((s) => s.name)).toEqual(['fs', 'everything', 'remote']);
    expect(config.http?.clients.map((c) => c.principalId)).toEqual(['ci-bot']);
    expect(config.approvals.approvers.map((a) => a.principalId)).toEqual(['alice']);
  });
});

describe('examples/mcp/policy.toml', () => {
  const file = join(DIR, 'policy.toml');
  const gate = Gate.fromFile(file, { drift: false });
  const call = async (actionName: string, params: Record<string, unknown> = {}) =>
    outcome(await (await gate).evaluate({ principalId: 'alice-laptop', principalKind: 'agent', actionName, params }));

  it('reads the same here and in Kavach (no glob-reading warnings)', () => {
    expect(globReadingWarnings(parsePolicyText(readFileSync(file, 'utf8'), 'toml'))).toEqual([]);
  });

  it('holds policies/fs.toml unchanged for the filesystem server', () => {
    const shipped = parsePolicyText(readFileSync(join(REPO, 'policies', 'fs.toml'), 'utf8'), 'toml').policies;
    const example = parsePolicyText(readFileSync(file, 'utf8'), 'toml').policies;
    expect(example.slice(0, shipped.length)).toEqual(shipped);
    expect(example.slice(shipped.length).every((p) => p.name.startsWith('everything-') || p.name === 'no-env')).toBe(true);
  });

  it('guards the filesystem server', async () => {
    expect(await call('fs.read_text_file', { path: '/home/alice/work/notes.md' })).toBe('permit:fs-read');
    expect(await call('fs.read_text_file', { path: '/etc/passwd' })).toMatch(
      /^NO_POLICY_MATCH: .*it is outside the root "\/home\/alice\/work"$/,
    );
    expect(await call('fs.read_text_file', { path: '/home/alice/work/.env' })).toMatch(
      /^POLICY_DENIED: 'no-secrets' refuses .*: Never touch key material/,
    );
  });

  it('guards the everything server', async () => {
    expect(await call('everything.echo', { message: 'hi' })).toBe('permit:everything-echo');
    expect(await call('everything.echo', { message: 'x'.repeat(2001) })).toMatch(/^NO_POLICY_MATCH/);
    expect(await call('everything.get-sum', { a: 1, b: 2 })).toBe('permit:everything-tools');
    expect(await call('everything.trigger-long-running-operation', { duration: 1, steps: 1 })).toBe('permit:everything-asks-the-client');
    expect(await call('everything.get-env')).toBe(
      "POLICY_DENIED: 'no-env' refuses 'everything.get-env' for agent 'alice-laptop': get-env returns the server's environment, API keys and tokens included",
    );
    expect(await call('everything.gzip-file-as-resource', { data: 'https://raw.githubusercontent.com/a/b/README.md' })).toBe(
      'permit:everything-fetch',
    );
    expect(await call('everything.gzip-file-as-resource', { data: 'http://169.254.169.254/latest/meta-data' })).toMatch(/^NO_POLICY_MATCH/);
    expect(await call('everything.toggle-subscriber-updates')).toMatch(/^NO_POLICY_MATCH/);
  });
});

describe('examples/mcp client snippets', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json'));
  it.each(files)('%s starts `kavach mcp --config ...`', (name) => {
    const doc = JSON.parse(readFileSync(join(DIR, name), 'utf8')) as Record<string, Record<string, { command: string; args: string[] }>>;
    const servers = doc.mcpServers ?? doc.servers ?? {};
    const entry = servers.kavach;
    expect(entry?.command).toBe('kavach');
    expect(entry?.args.slice(0, 2)).toEqual(['mcp', '--config']);
    expect(entry?.args[2]).toMatch(/kavach\.toml$/);
  });
});

describe('the package', () => {
  it('ships LICENSE, examples/mcp (not its repository-only .ts) and the policy examples', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
    for (const f of ['LICENSE', 'examples/mcp/kavach.toml', 'examples/mcp/policy.toml', 'examples/mcp/README.md', 'policies/fs.toml'])
      expect(files, f).toContain(f);
    for (const f of readdirSync(DIR).filter((n) => n.endsWith('.json'))) expect(files).toContain(`examples/mcp/${f}`);
    expect(files.filter((f) => f.startsWith('examples/') && f.endsWith('.ts'))).toEqual([]);
    expect(readFileSync(join(REPO, 'LICENSE'), 'utf8')).toMatch(/^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
  });
});
