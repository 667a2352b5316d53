import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gate, PolicyError, parsePolicyDocument, parsePolicyText } from '../../src/engine/index.ts';
import { compileHostPatterns, hostPatternProblem, urlHostAllowed } from '../../src/engine/conditions/url-host.ts';
import { run as policyCli } from '../../src/cli/policy.ts';
import { gateOf, outcome } from './helpers.ts';

const call = (params: Record<string, unknown>) => ({ principalId: 'bot', principalKind: 'agent' as const, actionName: 'web.fetch', params });

/** allow_all beside one refuse policy: what the refuse policy matches is refused. */
const guarded = (conditions: object[]) =>
  gateOf({ policies: [{ name: 'allow_all', effect: 'permit', conditions: [] }, { name: 'guard', effect: 'refuse', conditions }] });
const allowing = (conditions: object[]) => gateOf({ policies: [{ name: 'allow', effect: 'permit', conditions }] });

function loadError(doc: object): PolicyError {
  try {
    parsePolicyDocument(doc);
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('loaded');
}

describe('url_host_in reads an IPv4-mapped IPv6 literal as the IPv4 address it reaches', () => {
  it('a refuse on the metadata address also refuses its [::ffff:…] spelling', async () => {
    const gate = guarded([{ url_host_in: { field: 'url', hosts: ['169.254.169.254', '127.0.0.1'] } }]);
    for (const url of ['http://169.254.169.254/latest/meta-data', 'http://[::ffff:169.254.169.254]/latest', 'http://[::ffff:a9fe:a9fe]/', 'http://[0:0:0:0:0:ffff:7f00:1]:8080/']) {
      expect(await outcome(gate, call({ url })), url).toBe('POLICY_DENIED');
    }
    expect(await outcome(gate, call({ url: 'http://[::1]/' }))).toBe('permit');
  });

  it('property: a v4-mapped literal is judged exactly as the dotted address, in an allow-list too', () => {
    fc.assert(fc.property(fc.ipV4(), fc.ipV4(), fc.boolean(), (ip, other, hex) => {
      const allowed = compileHostPatterns([ip === other ? '10.9.8.7' : other, ip]);
      const parts = ip.split('.').map(Number) as [number, number, number, number];
      const h = (a: number, b: number) => ((a << 8) | b).toString(16);
      const mapped = hex ? `[::ffff:${h(parts[0], parts[1])}:${h(parts[2], parts[3])}]` : `[::ffff:${ip}]`;
      expect(urlHostAllowed(`http://${mapped}/`, allowed, ['http'])).toBe(true);
      expect(urlHostAllowed(`http://${mapped}/`, compileHostPatterns([other]), ['http'])).toBe(ip === other);
    }));
  });
});

describe('url_host_in host patterns are spelt the way a parsed URL spells its host', () => {
  it.each([
    ['127.000.000.001', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['1.2.3', '1.2.0.3'],
    ['[0:0:0:0:0:0:0:1]', '[::1]'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
  ])('refuses %j, which no URL host ever equals, and names %j', (pattern, canonical) => {
    const err = loadError({ policies: [{ name: 'p', effect: 'refuse', conditions: [{ url_host_in: { field: 'u', hosts: ['example.com', pattern] } }] }] });
    expect(err.path).toBe('policies[0].conditions[0].url_host_in.hosts[1]');
    expect(err.message).toContain(`"${canonical}"`);
  });

  it('refuses a wildcard over IP addresses (*.0.0.1 would match 127.0.0.1)', () => {
    for (const pattern of ['*.0.0.1', '*.123', '*.0x7f']) {
      expect(loadError({ policies: [{ name: 'p', effect: 'permit', conditions: [{ url_host_in: { field: 'u', hosts: [pattern] } }] }] }).path).toBe('policies[0].conditions[0].url_host_in.hosts[0]');
    }
  });

  it('property: every exact pattern the loader accepts is matched by a URL naming that host', () => {
    const label = fc.oneof(
      fc.stringMatching(/^[a-z0-9-]{1,8}$/),
      fc.stringMatching(/^(0|0x[0-9a-f]{1,3}|[0-9]{1,4}|0[0-7]{1,3})$/),
    );
    fc.assert(fc.property(fc.array(label, { minLength: 1, maxLength: 5 }), (labels) => {
      const pattern = labels.join('.');
      fc.pre(hostPatternProblem(pattern) === undefined);
      expect(urlHostAllowed(`http://${pattern}/`, compileHostPatterns([pattern]), ['http'])).toBe(true);
    }), { numRuns: 2000 });
  });

  it('still takes ordinary names, punycode, IPv4 and bracketed IPv6 as they are', () => {
    for (const p of ['example.com', '*.example.com', 'xn--mnchen-3ya.de', 'a--b.example', '10.0.0.1', '[::1]', '[2001:db8::1]', 'localhost']) {
      expect(hostPatternProblem(p), p).toBeUndefined();
    }
  });
});

describe('url_host_in: a host with an empty last label cannot be judged', () => {
  it('https://example.com../ is refused by a refuse on example.com and fails an allow-list', async () => {
    expect(await outcome(guarded([{ url_host_in: { field: 'url', hosts: ['example.com'] } }]), call({ url: 'https://example.com../' }))).toBe('POLICY_DENIED');
    expect(await outcome(allowing([{ url_host_in: { field: 'url', hosts: ['example.com'] } }]), call({ url: 'https://example.com../' }))).toBe('NO_POLICY_MATCH');
  });
});

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
    for (const path of ['/home/alice/work/.ENV', '/home/alice/work/app/.Env.production', '/home/alice/work/.Git/config', '/home/alice/work/certs/SERVER.PEM', '/home/alice/work/.SSH/id_rsa']) {
      expect(await kind({ path }), path).toBe('refuse');
    }
    expect(await kind({ path: '/home/alice/work/README.md' })).toBe('permit');
    expect(await kind({ path: '/home/alice/work/Docs/Plan.TXT' })).toBe('permit');
  });

  it('a refuse on /etc also refuses /ETC/passwd and /Etc/shadow', async () => {
    const deny = guarded([{ path_within: { field: 'path', roots: ['/etc'] } }]);
    for (const path of ['/etc/passwd', '/ETC/passwd', '/Etc/shadow']) expect(await outcome(deny, call({ path })), path).toBe('POLICY_DENIED');
    expect(await outcome(deny, call({ path: '/Work/etc' }))).toBe('permit');
    const mixed = guarded([{ path_within: { field: 'path', roots: ['/Volumes/Secret'] } }]);
    for (const path of ['/Volumes/Secret/a', '/volumes/secret/a', '/VOLUMES/SECRET']) expect(await outcome(mixed, call({ path })), path).toBe('POLICY_DENIED');
    expect(await outcome(mixed, call({ path: '/volumes/other' }))).toBe('permit');
  });
});

describe('path_within exclude globs that can never match a path are refused at load', () => {
  const withExclude = (exclude: string[]) => ({ policies: [{ name: 'p', effect: 'permit', conditions: [{ path_within: { field: 'path', roots: ['/w'], exclude } }] }] });
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

describe('a polluted Object.prototype cannot lend a policy defaults it never wrote', () => {
  it('loading refuses while Object.prototype carries enumerable junk, in every format, and loads again once it is clean', () => {
    const toml = '[[policy]]\nname = "a"\neffect = "permit"\nconditions = [{ rate_limit = { max = 1, window = "1h" } }]\n';
    const proto = Object.prototype as Record<string, unknown>;
    proto.per = 'global';
    proto.combining = 'first-match';
    let results: unknown[];
    try {
      results = [
        () => parsePolicyText(toml, 'toml'),
        () => parsePolicyText('{"policies":[{"name":"a","effect":"permit","conditions":[]}]}', 'json'),
        () => parsePolicyDocument({ policies: [] }),
      ].map((load) => {
        try {
          return load();
        } catch (e) {
          return e;
        }
      });
    } finally {
      delete proto.per;
      delete proto.combining;
    }
    for (const r of results) {
      expect(r).toBeInstanceOf(PolicyError);
      expect((r as PolicyError).message).toMatch(/prototype/);
    }
    const clean = parsePolicyText(toml, 'toml');
    expect(clean.combining).toBe('deny-overrides');
  });
});

describe('file invariants are checked like code invariants', () => {
  it('two file invariants with one name are refused at the second', () => {
    const err = loadError({ policies: [], invariant: [{ name: 'cap', param_max: { field: 'a', max: 1 } }, { name: 'cap', param_min: { field: 'a', min: 0 } }] });
    expect(err.path).toBe('invariant[1].name');
    expect(err.message).toMatch(/duplicate invariant name/);
  });

  it('a misspelt key beside a rule is named as an unknown key at its path', () => {
    const err = loadError({ policies: [], invariant: [{ name: 'cap', descripton: 'x', param_max: { field: 'a', max: 1 } }] });
    expect(err.path).toBe('invariant[0].descripton');
    expect(err.message).toMatch(/unknown key \(did you mean "description"\?\)/);
    const err2 = loadError({ policies: [], invariants: [{ name: 'cap', action: ['a.*'], blocked_actions: ['x'] }] });
    expect(err2.path).toBe('invariants[0].action');
    expect(err2.message).toMatch(/did you mean "actions"/);
  });

  it('combining written below an [[invariant]] table says where it belongs, as below [[policy]]', () => {
    let caught: unknown;
    try {
      parsePolicyText('[[invariant]]\nname = "cap"\nparam_max = { field = "a", max = 1 }\ncombining = "first-match"\n', 'toml');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect((caught as PolicyError).path).toBe('invariant[0].combining');
    expect((caught as PolicyError).message).toMatch(/above the first/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('kavach policy check / explain', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  const file = (name: string) => join(dir, name);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavach-policy-cli-'));
    await writeFile(file('good.toml'), '[[policy]]\nname = "p"\neffect = "permit"\nconditions = [{ action = "fs.*" }, { session_age_max = "1h" }]\n');
    await writeFile(file('bad.toml'), '[[policy]]\nname = "p"\neffect = "permit"\nconditions = [{ param_max = { feild = "x", max = 1 } }]\n');
    await writeFile(file('ctx.json'), JSON.stringify({ principalId: 'a', principalKind: 'agent', actionName: 'fs.read', sessionId: 's1' }));
    await writeFile(file('broken.json'), '{"principalId": "a",');
    await writeFile(file('bom.json'), `\uFEFF${JSON.stringify({ principalId: 'a', principalKind: 'agent', actionName: 'fs.read', sessionId: 's1' })}`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  function capture(): void {
    out = [];
    err = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true));
  }

  it('check validates every file it is given (a shell glob), and fails if any is bad', async () => {
    capture();
    expect(await policyCli(['check', file('good.toml'), file('bad.toml')])).toBe(1);
    expect(out.join('')).toContain(`${file('good.toml')}: OK`);
    expect(err.join('')).toContain(`${file('bad.toml')}: invalid policy`);
    expect(err.join('')).toContain('param_max.feild: unknown key');
    capture();
    expect(await policyCli(['check', file('bad.toml'), file('good.toml')])).toBe(1);
    expect(out.join('')).toContain(`${file('good.toml')}: OK`);
  });

  it('--help exits 0 like the other subcommands, usage on stdout; a wrong subcommand exits 2 on stderr', async () => {
    for (const [argv, rc] of [[['--help'], 0], [['help'], 0], [['-h'], 0], [['frob'], 2], [[], 2]] as const) {
      capture();
      expect(await policyCli([...argv])).toBe(rc);
      expect((rc === 0 ? out : err).join('')).toContain(argv[0] === 'frob' ? 'kavach policy --help' : 'kavach policy check');
      expect((rc === 0 ? err : out).join('')).toBe('');
    }
  });

  it('a file that cannot be read is called that, not an invalid policy', async () => {
    capture();
    expect(await policyCli(['check', file('missing.toml')])).toBe(2);
    expect(err.join('')).toContain(`${file('missing.toml')}: cannot read`);
    expect(err.join('')).toContain('ENOENT');
    expect(err.join('')).not.toContain('invalid policy');
  });

  it('explain names the file that is wrong, policy or context, on stderr only', async () => {
    capture();
    expect(await policyCli(['explain', file('bad.toml'), '--context', file('ctx.json')])).toBe(1);
    expect(err.join('')).toContain(`${file('bad.toml')}: invalid policy`);
    expect(err.join('')).toContain('param_max.feild');
    capture();
    expect(await policyCli(['explain', file('good.toml'), '--context', file('broken.json')])).toBe(1);
    expect(err.join('')).toContain(file('broken.json'));
    capture();
    expect(await policyCli(['explain', file('good.toml'), '--context', file('missing.json')])).toBe(2);
    expect(err.join('')).toContain(file('missing.json'));
    expect(out.join('')).toBe('');
  });

  it('check and explain print no raw control characters from a policy file (a name cannot rewrite the terminal)', async () => {
    // A reviewer reads `policy check` to see what a file permits: `\r` or an escape sequence in a
    // name, field or pattern must not overwrite or hide what is printed before it.
    await writeFile(file('sneaky.toml'), [
      '[[policy]]',
      'name = "allow_all\\r  - refuse  guard: always\\u001b[8m"',
      'effect = "permit"',
      'conditions = [{ param_max = { field = "a\\u001b]0;x\\u0007\\u202e", max = 1 } }]',
    ].join('\n'));
    await writeFile(file('sneaky-bad.toml'), '[[policy]]\nname = "b"\neffect = "permit"\nconditions = [{ action = "x\\u001b[2K**" }]\n');
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
    capture();
    expect(await policyCli(['check', file('sneaky.toml'), file('sneaky-bad.toml')])).toBe(1);
    expect(out.join('')).toContain('allow_all');
    expect(out.join('')).not.toMatch(raw);
    expect(err.join('')).toContain('sneaky-bad.toml: invalid policy');
    expect(err.join('')).not.toMatch(raw);
    capture();
    await policyCli(['explain', file('sneaky.toml'), '--context', file('ctx.json')]);
    expect(out.join('')).toContain('allow_all');
    expect(out.join('')).not.toMatch(raw);
  });

  it('explain reads a context file that starts with a byte-order mark, as policy files may', async () => {
    capture();
    expect(await policyCli(['explain', file('good.toml'), '--context', file('bom.json')])).toBe(0);
    expect(out.join('')).toContain('verdict: PERMIT');
  });

  it('explain traces a call with a session as the evaluation saw it: they agree', async () => {
    capture();
    expect(await policyCli(['explain', file('good.toml'), '--context', file('ctx.json'), '--json'])).toBe(0);
    const report = JSON.parse(out.join('')) as { verdict: { kind: string }; policies: { name: string; matches: boolean; conditions: { condition: string; holds: boolean }[] }[] };
    expect(report.verdict.kind).toBe('permit');
    expect(report.policies[0]?.matches).toBe(true);
    expect(report.policies[0]?.conditions.find((c) => c.condition === 'session_age_max')?.holds).toBe(true);
  });
});
