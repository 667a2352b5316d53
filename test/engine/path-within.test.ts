// path_within against paths that read differently from the way they compare: compatibility
// (NFKC) look-alikes, case on case-insensitive file systems, and exclude globs that never match.
import { describe, expect, it } from 'vitest';
import { Gate, parsePolicyDocument } from '../../src/engine/index.ts';
import { allowing, ctx, guarded, loadError, outcome } from './helpers.ts';

const call = (params: Record<string, unknown>) => ctx({ principalId: 'bot', actionName: 'web.fetch', params });

describe('path_within: a path whose compatibility form (NFKC) reads differently cannot be judged', () => {
  const inside = [{ path_within: { field: 'path', roots: ['/work'], exclude: ['*/.env'] } }];
  it('look-alike dots and letters do not pass an allow-list or walk around a deny', async () => {
    for (const path of ['/work/\u2025/etc/passwd', '/work/\uff0e\uff0e/etc/passwd', '/work/\uff0eenv', '/work/a\uff0f..\uff0fb']) {
      expect(await outcome(allowing(inside), call({ path })), path).toBe('NO_POLICY_MATCH');
    }
    const deny = guarded([{ path_within: { field: 'path', roots: ['/etc'] } }]);
    expect(await outcome(deny, call({ path: '/\uff45tc/passwd' }))).toBe('POLICY_DENIED');
    expect(await outcome(deny, call({ path: '/work/caf\u00e9' }))).toBe('permit');
  });

  it('non-ASCII names that read the same either way still pass', async () => {
    for (const path of ['/work/caf\u00e9.txt', '/work/\ufb01le', '/work/\u65e5\u672c\u8a9e/a.md']) {
      expect(await outcome(allowing(inside), call({ path })), path).toBe('permit');
    }
  });
});

describe('path_within on a case-insensitive file system (macOS, Windows): a spelling in another case cannot be judged', () => {
  it('policies/fs.toml keeps .ENV, .Git and KEY.PEM out as it keeps .env, .git and key.pem out', async () => {
    const fs = await Gate.fromFile('policies/fs.toml', { drift: false });
    const kind = async (params: Record<string, unknown>) =>
      (await fs.evaluate({ principalId: 'alice-laptop', principalKind: 'agent', actionName: 'fs.read_text_file', params })).kind;
    for (const path of [
      '/home/alice/work/.ENV',
      '/home/alice/work/app/.Env.production',
      '/home/alice/work/.Git/config',
      '/home/alice/work/certs/SERVER.PEM',
      '/home/alice/work/.SSH/id_rsa',
    ]) {
      expect(await kind({ path }), path).toBe('refuse');
    }
    expect(await kind({ path: '/home/alice/work/README.md' })).toBe('permit');
    expect(await kind({ path: '/home/alice/work/Docs/Plan.TXT' })).toBe('permit');
  });

  it('a refuse on /etc also refuses /ETC/passwd and /Etc/shadow', async () => {
    const deny = guarded([{ path_within: { field: 'path', roots: ['/etc'] } }]);
    for (const path of ['/etc/passwd', '/ETC/passwd', '/Etc/shadow'])
      expect(await outcome(deny, call({ path })), path).toBe('POLICY_DENIED');
    expect(await outcome(deny, call({ path: '/Work/etc' }))).toBe('permit');
    const mixed = guarded([{ path_within: { field: 'path', roots: ['/Volumes/Secret'] } }]);
    for (const path of ['/Volumes/Secret/a', '/volumes/secret/a', '/VOLUMES/SECRET'])
      expect(await outcome(mixed, call({ path })), path).toBe('POLICY_DENIED');
    expect(await outcome(mixed, call({ path: '/volumes/other' }))).toBe('permit');
  });
});

describe('path_within exclude globs that can never match a path are refused at load', () => {
  const withExclude = (exclude: string[]) => ({
    policies: [{ name: 'p', effect: 'permit', conditions: [{ path_within: { field: 'path', roots: ['/w'], exclude } }] }],
  });
  it.each([['.env'], ['secrets/*'], ['*/.git/'], ['/w/.ssh/']])('%j names its path', (bad) => {
    const err = loadError(withExclude(['*.pem', bad]));
    expect(err.path).toBe('policies[0].conditions[0].path_within.exclude[1]');
    expect(err.message).toMatch(/never match/);
  });

  it('globs that start with / or * and do not end in / load and exclude', async () => {
    expect(() => parsePolicyDocument(withExclude(['*/.env', '/w/secret', '*.pem', '*/.git/*', '*']))).not.toThrow();
    const gate = allowing([{ path_within: { field: 'path', roots: ['/w'], exclude: ['*/.git/*', '/w/secret'] } }]);
    expect(await outcome(gate, call({ path: '/w/.git/config' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, call({ path: '/w/secret' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, call({ path: '/w/readme' }))).toBe('permit');
  });
});
