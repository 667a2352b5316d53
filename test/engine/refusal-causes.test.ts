// Refusals say why in terms the caller can act on: a path_within refusal names its cause (a ".."
// segment, a relative path, outside which roots, which exclude, a symlink leading out) instead of
// the whole rule, and a refuse policy's description travels with POLICY_DENIED. Nothing beyond
// what the policy author wrote and the argument's name: never the value the caller sent (the
// reason is audited even where record_args is off or redact covers the field), never where a
// symlink leads.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRefusal, type Verdict } from '../../src/engine/index.ts';
import { ctx, gateOf } from './helpers.ts';

const reasonOf = (v: Verdict): string => (v.kind === 'refuse' ? `[${v.code}] ${v.reason}` : v.kind);
const read = (params: Record<string, unknown>) => ctx({ principalId: 'bot', actionName: 'fs.read', params });

describe('a path_within refusal names its cause', () => {
  const gate = gateOf({
    policies: [
      {
        name: 'fs-read',
        effect: 'permit',
        conditions: [
          { action: 'fs.read' },
          { path_within: { field: 'path', roots: ['/w', '/srv/data/'], exclude: ['*/.env', '*.pem', '*/.git'] } },
        ],
      },
      { name: 'fs-many', effect: 'permit', conditions: [{ action: 'fs.read_many' }, { path_within: { field: 'paths', roots: ['/w'] } }] },
    ],
  });
  const because = async (params: Record<string, unknown>, action = 'fs.read') =>
    reasonOf(await gate.evaluate(ctx({ principalId: 'bot', actionName: action, params })));
  const no = "[NO_POLICY_MATCH] no policy permits 'fs.read' for agent 'bot'; 'fs-read' does not allow the value of path";

  it.each([
    ['a .. segment', '/w/a/../../etc/passwd', 'it has a ".." segment'],
    ['a relative path', 'notes/todo.md', 'it is a relative path (paths must be absolute)'],
    ['outside the roots, naming them', '/etc/passwd', 'it is outside the roots "/w", "/srv/data"'],
    ['a sibling sharing the root as prefix', '/w-evil/x', 'it is outside the roots "/w", "/srv/data"'],
    ['excluded by */.env', '/w/app/.env', 'it is excluded by "*/.env"'],
    ['excluded by *.pem', '/srv/data/tls/server.pem', 'it is excluded by "*.pem"'],
    ['below an excluded directory', '/w/.git/config', 'it is excluded by "*/.git"'],
    [
      'a spelling another file system folds into an excluded one',
      '/w/.ENV',
      'it reads, where case and Unicode forms fold (macOS, Windows), as a path that is excluded by "*/.env"',
    ],
    ['a "." segment', '/w/./a', 'it has a "." segment'],
    ['an empty segment', '/w//a', 'it has an empty segment ("//")'],
    ['a trailing slash', '/w/a/', 'it ends in "/"'],
    ['a backslash', '/w\\..\\etc', 'it contains a backslash'],
    ['an encoded separator', '/w/..%2fetc', 'it contains a percent-encoded dot, separator or percent sign'],
    ['a NUL byte', '/w/a\0b', 'it contains a NUL character'],
  ])('%s', async (_label, path, cause) => {
    const reason = await because({ path });
    expect(reason).toBe(`${no}: ${cause}`);
    expect(reason).not.toContain(path);
  });

  it('a value that is no path, a missing one, and a list name the failing item', async () => {
    expect(await because({ path: 42 })).toBe(`${no}: it is not a path (a string)`);
    expect(await because({})).toBe(
      "[NO_POLICY_MATCH] no policy permits 'fs.read' for agent 'bot'; 'fs-read' needs path, and the call has none",
    );
    const many = "[NO_POLICY_MATCH] no policy permits 'fs.read_many' for agent 'bot'; 'fs-many' does not allow the value of paths";
    expect(await because({ paths: ['/w/a', '/w/../etc/shadow'] }, 'fs.read_many')).toBe(`${many}[1]: it has a ".." segment`);
    expect(await because({ paths: [] }, 'fs.read_many')).toBe(`${many}: it is an empty list`);
  });

  it('a path that passes is permitted (the causes are for refusals only)', async () => {
    expect(await because({ path: '/w/src/index.ts' })).toBe('permit');
    expect(await because({ path: '/srv/data/report.csv' })).toBe('permit');
  });

  it('never quotes the path the caller sent, so it cannot break the refusal text or leak into the audit', async () => {
    const sneaky = `/etc/\u001b[2J\n${'x'.repeat(200)}`;
    const reason = await because({ path: sneaky });
    expect(reason).not.toMatch(/[\u0000-\u001f]/);
    expect(reason).not.toContain('xxxxxx');
    expect(reason).not.toContain('2J');
    expect(reason.length).toBeLessThan(300);
  });
});

describe('path_within with follow_links: a link leading outside or into an exclude says so, not where it leads', () => {
  let base: string;
  let root: string;
  let outside: string;
  beforeAll(() => {
    base = realpathSync(mkdtempSync(join(tmpdir(), 'kavach-causes-')));
    root = join(base, 'w');
    outside = join(base, 'private-elsewhere');
    mkdirSync(join(root, '.git'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'the secret contents');
    symlinkSync(outside, join(root, 'link'));
    symlinkSync(join(root, '.git'), join(root, 'gitlink'));
    symlinkSync(join(root, 'loop'), join(root, 'loop'));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const linked = () =>
    gateOf({
      policies: [
        {
          name: 'fs-read',
          effect: 'permit',
          conditions: [{ action: 'fs.read' }, { path_within: { field: 'path', roots: [root], exclude: ['*/.git'], follow_links: true } }],
        },
      ],
    });

  it('names a link out of the roots, into an exclude, and one that does not resolve', async () => {
    const gate = linked();
    const cause = async (path: string) => {
      const reason = reasonOf(await gate.evaluate(read({ path })));
      expect(reason).not.toContain('private-elsewhere');
      expect(reason).not.toContain('the secret contents');
      return reason.slice(reason.indexOf(': it ') + 2);
    };
    expect(await cause(join(root, 'link', 'secret.txt'))).toBe(
      `it leads through a symlink to a path that is outside the root ${JSON.stringify(root)}`,
    );
    expect(await cause(join(root, 'gitlink', 'config'))).toBe('it leads through a symlink to a path that is excluded by "*/.git"');
    expect(await cause(join(root, 'loop'))).toMatch(/^it cannot be resolved on the file system \(a dangling or looping symlink/);
    expect(await cause(join(root, '.git', 'HEAD'))).toBe('it is excluded by "*/.git"');
  });
});

describe('POLICY_DENIED carries the refusing policy description', () => {
  const gate = gateOf({
    policies: [
      { name: 'allow_all', effect: 'permit', conditions: [] },
      {
        name: 'no-secrets',
        description: 'Never touch key material,\n  env files or git internals.',
        effect: 'refuse',
        conditions: [{ param_glob: { field: 'path', pattern: '*/.env' } }],
      },
      { name: 'no-rm', effect: 'refuse', conditions: [{ action: 'fs.rm' }] },
    ],
  });

  it('in the reason, on one line, and in the text the model reads', async () => {
    const v = await gate.evaluate(read({ path: '/w/.env' }));
    expect(reasonOf(v)).toBe(
      "[POLICY_DENIED] 'no-secrets' refuses 'fs.read' for agent 'bot': Never touch key material, env files or git internals",
    );
    expect(v.kind === 'refuse' && formatRefusal(v)).toBe(
      "Refused by policy [POLICY_DENIED] policy: 'no-secrets' refuses 'fs.read' for agent 'bot': Never touch key material, env files or git internals.",
    );
  });

  it('a policy without a description reads as before', async () => {
    expect(reasonOf(await gate.evaluate(ctx({ principalId: 'bot', actionName: 'fs.rm' })))).toBe(
      "[POLICY_DENIED] 'no-rm' refuses 'fs.rm' for agent 'bot'",
    );
  });

  it('first-match: a refuse reached after a spent permit carries it too', async () => {
    const fm = gateOf({
      combining: 'first-match',
      policies: [
        { name: 'one', effect: 'permit', priority: 1, conditions: [{ rate_limit: { max: 1, window: '1h' } }] },
        { name: 'stop', description: 'One call an hour.', effect: 'refuse', priority: 2, conditions: [] },
      ],
    });
    expect((await fm.evaluate(ctx())).kind).toBe('permit');
    expect(reasonOf(await fm.evaluate(ctx()))).toBe("[POLICY_DENIED] 'stop' refuses 'tool.run' for agent 'agent-1': One call an hour");
  });
});
