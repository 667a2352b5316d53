import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openLog, verdict, key } from '../audit/helpers.ts';
import { kavach, tempDir } from './helpers.ts';

// Every subcommand declares its options: a misspelt flag, or a flag whose value went missing, is a
// usage error (exit 2, one line naming it and pointing at --help), never silently ignored. Each
// command line below is otherwise good, so ignoring the bad flag would run the command.
const dir = tempDir();
const log = join(dir, 'audit.jsonl');
const keys = join(dir, 'public.json');
const policy = join(dir, 'policy.toml');
const ctx = join(dir, 'ctx.json');
const client = join(dir, 'cursor.json');
const missingConfig = join(dir, 'no-such-kavach.toml');

beforeAll(async () => {
  writeFileSync(keys, JSON.stringify(key().publicKeys()));
  const l = await openLog(log);
  await l.append(verdict());
  await l.close();
  writeFileSync(policy, '[[policy]]\nname = "reads"\neffect = "permit"\nconditions = [{ action = "fs.read_file" }]\n');
  writeFileSync(ctx, JSON.stringify({ principalId: 'a', principalKind: 'agent', actionName: 'fs.read_file' }));
  writeFileSync(client, JSON.stringify({ mcpServers: {} }));
});

const good = (): Record<string, string[]> => ({
  'audit verify': ['audit', 'verify', log, '--keys', keys],
  'audit show': ['audit', 'show', log],
  'audit stats': ['audit', 'stats', log],
  'audit report': ['audit', 'report', log, '--keys', keys, '--out', join(dir, 'report.html')],
  keygen: ['keygen', '--out', join(dir, 'keys-never-written')],
  'permit verify': ['permit', 'verify', 'kv1.e30.AAAA', '--keys', keys],
  'policy check': ['policy', 'check', policy],
  'policy explain': ['policy', 'explain', policy, '--context', ctx],
  mcp: ['mcp', '--config', missingConfig],
  'mcp check': ['mcp', 'check', '--config', missingConfig],
  'mcp approve-tools': ['mcp', 'approve-tools', '--config', missingConfig],
  'mcp scan': ['mcp', 'scan', '--config', missingConfig],
  'mcp install': ['mcp', 'install', '--client', 'cursor', '--file', client, '--config', join(dir, 'kavach.toml'), '--dry-run'],
  'mcp uninstall': ['mcp', 'uninstall', '--client', 'cursor', '--file', client],
});

/** A flag each command takes a value for, placed last so that its value is missing. */
const valueFlag: Record<string, string> = {
  'audit verify': '--anchor',
  'audit show': '--session',
  'audit stats': '--keys',
  'audit report': '--mode',
  keygen: '--expires',
  'permit verify': '--audience',
  'policy check': '--context',
  'policy explain': '--context',
  mcp: '--config',
  'mcp check': '--config',
  'mcp approve-tools': '--config',
  'mcp scan': '--config',
  'mcp install': '--client',
  'mcp uninstall': '--file',
};

function expectUsageError(r: { code: number; out: string; err: string }, command: string, says: string): void {
  expect(r.code, r.err).toBe(2);
  expect(r.out).toBe('');
  const lines = r.err.trimEnd().split('\n');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toContain(`kavach ${command}: ${says}`);
  expect(lines[0]).toContain(`kavach ${command} --help`);
}

describe('every kavach subcommand rejects what it does not declare', () => {
  it('audit verify with a misspelt --anchor does not print ok and exit 0 (the check asked for would be skipped)', async () => {
    const r = await kavach('audit', 'verify', log, '--keys', keys, '--anchr', 'x');
    expectUsageError(r, 'audit verify', 'unknown option --anchr');
  });

  it.each(Object.keys(good()))('%s: an unknown option is exit 2, one line, and a hint to --help', async (command) => {
    const r = await kavach(...(good()[command] as string[]), '--bogus');
    expectUsageError(r, command, 'unknown option --bogus');
  });

  it.each(Object.keys(good()).filter((c) => c !== 'policy check'))(
    '%s: an option missing its value is exit 2, one line',
    async (command) => {
      const flag = valueFlag[command] as string;
      const argv = (good()[command] as string[]).filter((a, i, all) => a !== flag && all[i - 1] !== flag);
      const r = await kavach(...argv, flag);
      expectUsageError(r, command, `option ${flag} needs a value`);
    },
  );

  it('a value that is itself a flag is a missing value, not the value', async () => {
    const r = await kavach('audit', 'verify', log, '--anchor', '--keys', keys);
    expectUsageError(r, 'audit verify', 'option --anchor needs a value');
  });

  it('a flag given twice is an error (which of the two would be checked?)', async () => {
    const r = await kavach('audit', 'verify', log, '--keys', keys, '--keys', join(dir, 'other.json'));
    expectUsageError(r, 'audit verify', 'option --keys given twice');
  });

  it('a boolean flag given a value is an error', async () => {
    const r = await kavach('audit', 'show', log, '--json=no');
    expectUsageError(r, 'audit show', 'option --json takes no value');
  });

  it('a stray argument is an error where the command takes none', async () => {
    expectUsageError(await kavach('mcp', 'check', '--config', missingConfig, 'extra'), 'mcp check', 'unexpected argument "extra"');
    expectUsageError(await kavach('audit', 'stats', log, log), 'audit stats', 'unexpected argument');
  });

  it('an unknown subcommand or top-level option is exit 2 with a hint', async () => {
    const sub = await kavach('audit', 'verfy', log);
    expect(sub.code).toBe(2);
    expect(sub.err.trimEnd().split('\n')).toHaveLength(1);
    expect(sub.err).toContain('kavach audit --help');
    const top = await kavach('--bogus');
    expect(top.code).toBe(2);
    expect(top.err).toContain('kavach --help');
  });
});

describe('--help and --version', () => {
  it.each([
    [[]],
    [['audit']],
    [['audit', 'verify']],
    [['audit', 'show']],
    [['audit', 'stats']],
    [['audit', 'report']],
    [['keygen']],
    [['permit']],
    [['permit', 'verify']],
    [['policy']],
    [['policy', 'check']],
    [['policy', 'explain']],
    [['mcp']],
    [['mcp', 'check']],
    [['mcp', 'approve-tools']],
    [['mcp', 'scan']],
    [['mcp', 'install']],
    [['mcp', 'uninstall']],
  ])('kavach %j --help prints the usage to stdout and exits 0', async (path) => {
    for (const flag of ['--help', '-h']) {
      const r = await kavach(...path, flag);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/usage/);
      expect(r.out).toContain(`kavach ${path.join(' ')}`.trim());
    }
  });

  it('--help wins over everything else on the line (it is never an error)', async () => {
    const r = await kavach('audit', 'verify', '--anchr', 'x', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('kavach audit verify');
  });

  it('kavach --version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await kavach('--version');
    expect(r).toEqual({ code: 0, out: `${version}\n`, err: '' });
  });

  it('no command at all is a usage error on stderr', async () => {
    const r = await kavach();
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('usage');
  });
});

describe('a file that cannot be read is one line and exit 2, never a stack', () => {
  const missing = (name: string): string => join(dir, 'missing', name);
  const cases = (): Array<[string, string[]]> => {
    const notADir = join(dir, 'plain-file');
    writeFileSync(notADir, 'x');
    mkdirSync(join(dir, 'a-directory'), { recursive: true });
    return [
      ['audit verify: missing log', ['audit', 'verify', missing('a.jsonl'), '--keys', keys]],
      ['audit verify: missing keys', ['audit', 'verify', log, '--keys', missing('k.json')]],
      ['audit verify: missing anchor', ['audit', 'verify', log, '--keys', keys, '--anchor', missing('seal.json')]],
      ['audit show: missing log', ['audit', 'show', missing('a.jsonl')]],
      ['audit show: missing keys', ['audit', 'show', log, '--keys', missing('k.json')]],
      ['audit stats: missing log', ['audit', 'stats', missing('a.jsonl')]],
      ['audit report: missing log', ['audit', 'report', missing('a.jsonl'), '--keys', keys, '--out', join(dir, 'r.html')]],
      ['audit report: unwritable out', ['audit', 'report', log, '--keys', keys, '--out', missing('r.html')]],
      ['keygen: out under a file', ['keygen', '--out', join(notADir, 'keys')]],
      ['permit verify: missing keys', ['permit', 'verify', 'kv1.e30.AAAA', '--keys', missing('k.json')]],
      ['permit verify: missing root', ['permit', 'verify', 'kv1.e30.AAAA', '--keys', keys, '--root', missing('root.json')]],
      ['policy check: missing policy', ['policy', 'check', missing('p.toml')]],
      ['policy explain: missing policy', ['policy', 'explain', missing('p.toml'), '--context', ctx]],
      ['policy explain: missing context', ['policy', 'explain', policy, '--context', missing('ctx.json')]],
      ['mcp: missing config', ['mcp', '--config', missing('kavach.toml')]],
      ['mcp check: missing config', ['mcp', 'check', '--config', missing('kavach.toml')]],
      ['mcp approve-tools: missing config', ['mcp', 'approve-tools', '--config', missing('kavach.toml')]],
      ['mcp scan: missing config', ['mcp', 'scan', '--config', missing('kavach.toml')]],
      ['mcp install: missing client file', ['mcp', 'install', '--client', 'cursor', '--file', missing('c.json'), '--dry-run']],
      [
        'mcp install: config is a directory',
        ['mcp', 'install', '--client', 'cursor', '--file', client, '--config', join(dir, 'a-directory'), '--dry-run'],
      ],
      ['mcp uninstall: missing client file', ['mcp', 'uninstall', '--client', 'cursor', '--file', missing('c.json')]],
    ];
  };

  it.each(cases())('%s', async (_label, argv) => {
    const r = await kavach(...argv);
    expect(r.code, r.err).toBe(2);
    const lines = r.err.trimEnd().split('\n');
    expect(lines, r.err).toHaveLength(1);
    expect(lines[0]).toMatch(/^kavach [a-z -]+: /);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
