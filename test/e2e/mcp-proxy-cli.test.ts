import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, cleanup, q, runCli, tempDir, write } from './proxy-harness.ts';

describe('kavach mcp refuses to start on a bad config', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
    write(join(dir, 'policy.toml'), '');
  });
  afterAll(() => cleanup(dir));

  const base = '[gate]\npolicy = "policy.toml"\n[identity]\nprincipal_id = "a"\nprincipal_kind = "agent"\n[servers.fs]\ncommand = "node"\n';

  it.each([
    ['an unknown key', `${base}argz = []\n`, 'config error: servers.fs.argz: unknown key'],
    ['a missing policy file', base.replace('policy.toml', 'nope.toml'), 'config error: gate.policy: cannot load'],
    ['a policy file that does not load', base.replace('policy.toml', 'bad.toml'), 'config error: gate.policy: cannot load'],
    ['[audit] without [keys]', `${base}[audit]\npath = "a.jsonl"\n`, 'config error: audit: [audit] needs [keys]'],
    ['missing keys', `${base}[keys]\npath = "keys/none.key"\n`, 'config error: keys.path: cannot load'],
    [
      'no [identity] in stdio mode',
      '[gate]\npolicy = "policy.toml"\n[servers.fs]\ncommand = "node"\n',
      'config error: identity: stdio mode needs [identity]',
    ],
    ['--http without clients', `${base}[http]\nlisten = "127.0.0.1:0"\n`, 'config error: http.clients: HTTP mode needs at least one'],
  ])('%s: exit 2, the reason on stderr, nothing on stdout', async (_label, config, message) => {
    write(join(dir, 'bad.toml'), '[[policy]]\nname = 1\n');
    const file = write(join(dir, `kavach-${Math.random().toString(36).slice(2)}.toml`), config);
    const args = ['mcp', '--config', file, ...(config.includes('[http]') ? ['--http'] : [])];
    const result = await runCli(args);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });
});

describe('kavach mcp check', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
    write(join(dir, 'policy.toml'), '[[policy]]\nname = "pid"\neffect = "permit"\nconditions = [{ action = "fx.pid" }]\n');
  });
  afterAll(() => cleanup(dir));

  it('starts each server once and shows which tools the client would see', async () => {
    const config = write(
      join(dir, 'kavach.toml'),
      `[gate]\npolicy = "policy.toml"\n[identity]\nprincipal_id = "a"\nprincipal_kind = "agent"\n[servers.fx]\ncommand = ${q(process.execPath)}\nargs = [${q(FIXTURE)}]\n[servers.gone]\ncommand = ${q(join(dir, 'missing'))}\n`,
    );
    const result = await runCli(['mcp', 'check', '--config', config]);
    expect(result.stdout).toContain('server fx: ready');
    expect(result.stdout).toMatch(/fx__pid\s+listed/);
    expect(result.stdout).toMatch(/fx__crash\s+hidden: no policy could permit it/);
    expect(result.stdout).toMatch(/server gone: down \(failed to start/);
    expect(result.code).toBe(1);
  });

  it('says a server still starting after the startup wait may be downloading, and exits 1', async () => {
    // A server that never answers initialize: still 'starting' when check stops waiting (10 s).
    const config = write(
      join(dir, 'slow.toml'),
      `[gate]\npolicy = "policy.toml"\n[identity]\nprincipal_id = "a"\nprincipal_kind = "agent"\n[servers.slow]\ncommand = ${q(process.execPath)}\nargs = ["-e", "setTimeout(() => {}, 60000)"]\n`,
    );
    const started = Date.now();
    const result = await runCli(['mcp', 'check', '--config', config]);
    // Closing ends the start under way: no waiting out the 30 s connect timeout.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(result.stdout).toContain(
      'server slow: starting\n  not up within 10 s (a first `npx -y` may still be downloading it): run check again',
    );
    expect(result.code).toBe(1);
  }, 25_000);
});
