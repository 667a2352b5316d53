import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as policyCli } from '../../src/cli/policy.ts';

describe('kavach policy check / explain', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  const file = (name: string) => join(dir, name);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavach-policy-cli-'));
    await writeFile(
      file('good.toml'),
      '[[policy]]\nname = "p"\neffect = "permit"\nconditions = [{ action = "fs.*" }, { session_age_max = "1h" }]\n',
    );
    await writeFile(
      file('bad.toml'),
      '[[policy]]\nname = "p"\neffect = "permit"\nconditions = [{ param_max = { feild = "x", max = 1 } }]\n',
    );
    await writeFile(file('ctx.json'), JSON.stringify({ principalId: 'a', principalKind: 'agent', actionName: 'fs.read', sessionId: 's1' }));
    await writeFile(file('broken.json'), '{"principalId": "a",');
    await writeFile(
      file('bom.json'),
      `\uFEFF${JSON.stringify({ principalId: 'a', principalKind: 'agent', actionName: 'fs.read', sessionId: 's1' })}`,
    );
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
    for (const [argv, rc] of [
      [['--help'], 0],
      [['help'], 0],
      [['-h'], 0],
      [['frob'], 2],
      [[], 2],
    ] as const) {
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
    await writeFile(
      file('sneaky.toml'),
      [
        '[[policy]]',
        'name = "allow_all\\r  - refuse  guard: always\\u001b[8m"',
        'effect = "permit"',
        'conditions = [{ param_max = { field = "a\\u001b]0;x\\u0007\\u202e", max = 1 } }]',
      ].join('\n'),
    );
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
    const report = JSON.parse(out.join('')) as {
      verdict: { kind: string };
      policies: { name: string; matches: boolean; conditions: { condition: string; holds: boolean }[] }[];
    };
    expect(report.verdict.kind).toBe('permit');
    expect(report.policies[0]?.matches).toBe(true);
    expect(report.policies[0]?.conditions.find((c) => c.condition === 'session_age_max')?.holds).toBe(true);
  });
});
