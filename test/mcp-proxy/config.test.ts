import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/engine/errors.ts';
import { parseConfig, parseConfigText, parseListen } from '../../src/mcp-proxy/config.ts';

const BASE = '[gate]\npolicy = "policies/fs.toml"\n[servers.fs]\ncommand = "node"\n';
const parse = (text: string, env: Record<string, string> = {}) => parseConfigText(text, 'toml', { file: '/etc/kavach/kavach.toml', env });

function errorOf(text: string, env: Record<string, string> = {}): ConfigError {
  try {
    parse(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('proxy config', () => {
  it("[audit] anchor names the Redis the log's checkpoints also go to (${VAR} expanded)", () => {
    const config = parse(`${BASE}[audit]\npath = "audit/mcp.jsonl"\nanchor = "redis://\${WITNESS}:6379/2"\n`, {
      WITNESS: 'witness.internal',
    });
    expect(config.audit).toMatchObject({ path: '/etc/kavach/audit/mcp.jsonl', anchor: 'redis://witness.internal:6379/2' });
    expect(parse(`${BASE}[audit]\npath = "a.jsonl"\n`).audit).not.toHaveProperty('anchor');
  });

  it('resolves paths from the config file and expands ${VAR}', () => {
    const config = parse(
      `${BASE}args = ["\${ROOT}/x"]\ncwd = "run"\n[keys]\npath = "keys/secret.key"\n[audit]\npath = "audit/mcp.jsonl"\n[servers.remote]\nurl = "https://mcp.example.com/mcp"\nheaders = { Authorization = "Bearer \${TOKEN}" }\n`,
      { ROOT: '/srv', TOKEN: 't0k' },
    );
    expect(config.gate.policy).toBe('/etc/kavach/policies/fs.toml');
    expect(config.keys).toEqual({ path: '/etc/kavach/keys/secret.key', mode: 'hybrid', signPermits: true });
    expect(config.tools.pinsFile).toBe('/etc/kavach/audit/tool-pins.json');
    expect(config.servers).toEqual([
      { kind: 'stdio', name: 'fs', command: 'node', args: ['/srv/x'], env: {}, cwd: '/etc/kavach/run' },
      { kind: 'http', name: 'remote', url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer t0k' } },
    ]);
  });

  it.each([
    [`${BASE}[gate2]\n`, 'gate2', 'unknown key'],
    ['[gate]\npolicy = "p.toml"\nobserve = true\n[servers.fs]\ncommand = "node"\n', 'gate.observe', 'unknown key'],
    [`${BASE}argz = []\n`, 'servers.fs.argz', 'unknown key'],
    [`${BASE}[servers.web]\nurl = "ftp://x"\n`, 'servers.web.url', ''],
    [`${BASE}[servers.bad]\nfoo = 1\n`, 'servers.bad', 'either `command`'],
    [`${BASE}[identity]\nprincipal_id = "a"\nprincipal_kind = "robot"\n`, 'identity.principal_kind', ''],
    [`${BASE}[gate.x]\n`, 'gate.x', 'unknown key'],
    ['[gate]\n[servers.fs]\ncommand = "node"\n', 'gate.policy', 'is required'],
    ['[gate]\npolicy = "p.toml"\n', 'servers', 'is required'],
    [`${BASE}[redis]\nurl = "http://x"\n`, 'redis.url', 'redis://'],
    [`${BASE}[audit]\npath = "a.jsonl"\nanchor = "http://witness"\n`, 'audit.anchor', 'redis://'],
    [`${BASE}[redis]\nurl = "redis://x"\ncommand_timeout_ms = 0\n`, 'redis.command_timeout_ms', ''],
    [`${BASE}[redis]\nurl = "redis://x"\ncommand_timeout_ms = 1.5\n`, 'redis.command_timeout_ms', ''],
    [`${BASE}[redis]\nurl = "redis://x"\ncommand_timeout_ms = "100"\n`, 'redis.command_timeout_ms', ''],
    [`${BASE}[tools]\ncall_timeout = "soon"\n`, 'tools.call_timeout', 'not a duration'],
    [`${BASE}[drift]\nwarn_actions_per_minute = 100\nmax_actions_per_minute = 50\n`, 'drift.max_actions_per_minute', 'at least'],
    [
      `${BASE}[http]\n[[http.clients]]\ntoken = "short"\nprincipal_id = "ci"\nprincipal_kind = "service"\n`,
      'http.clients[0].token',
      '16 characters',
    ],
    [`${BASE}[http]\nmax_calls_per_token = 0\n`, 'http.max_calls_per_token', ''],
    [`${BASE}[http]\nmax_calls_per_token = 2.5\n`, 'http.max_calls_per_token', ''],
    [`${BASE}[http]\nmax_calls_per_token = "64"\n`, 'http.max_calls_per_token', ''],
    [`${BASE}[http]\nmax_calls_per_token = inf\n`, 'http.max_calls_per_token', ''],
    [`${BASE}[http]\nmax_call_per_token = 64\n`, 'http.max_call_per_token', 'did you mean "max_calls_per_token"?'],
    ['[gate]\npolicy = "p.toml"\n[servers."a.b"]\ncommand = "node"\n', 'servers.a.b', 'server names'],
    ['[gate]\npolicy = "p.toml"\n[servers.a__b]\ncommand = "node"\n', 'servers.a__b', 'server names'],
  ])('refuses a bad config with the path of the bad field: %#', (text, path, message) => {
    const err = errorOf(text);
    expect(err.path).toBe(path);
    expect(err.message).toContain(message);
    expect(err.code).toBe('CONFIG_INVALID');
  });

  it.each([
    [
      `${BASE}[identity]\nprincipal_id = "a"\nprincipal_knd = "agent"\n`,
      'identity.principal_knd',
      'unknown key (did you mean "principal_kind"?)',
    ],
    [
      '[gate]\npolicy = "p.toml"\nobserve_onyl = true\n[servers.fs]\ncommand = "node"\n',
      'gate.observe_onyl',
      'unknown key (did you mean "observe_only"?)',
    ],
    [`${BASE}argz = []\n`, 'servers.fs.argz', 'unknown key (did you mean "args"?)'],
    [`${BASE}[servers.web]\nurl = "https://x.example/mcp"\nheader = {}\n`, 'servers.web.header', 'unknown key (did you mean "headers"?)'],
    [`${BASE}[servers.x]\ncomand = "node"\n`, 'servers.x', 'either `command` (stdio) or `url` (Streamable HTTP) (did you mean "command"?)'],
    [`${BASE}[audit]\npath = "a.jsonl"\nrecord_arg = true\n`, 'audit.record_arg', 'unknown key (did you mean "record_args"?)'],
    [
      `${BASE}[http]\n[[http.clients]]\ntoken = "0123456789abcdef"\nprincipal_id = "ci"\nprincipal_kin = "service"\n`,
      'http.clients[0].principal_kin',
      'did you mean "principal_kind"?',
    ],
    ['[gates]\npolicy = "p.toml"\n[servers.fs]\ncommand = "node"\n', 'gates', 'unknown key (did you mean "gate"?)'],
    [`${BASE}[identity]\nprincipal_id = "a"\n`, 'identity.principal_kind', 'is required'],
    [`${BASE}[identity]\nprincipal_kind = "agent"\n`, 'identity.principal_id', 'is required'],
    ['[servers.fs]\ncommand = "node"\n', 'gate', 'is required'],
    [`${BASE}[audit]\nrecord_args = true\n`, 'audit.path', 'is required'],
    [`${BASE}[audit]\npath = "a.jsonl"\nredact = ["password"]\n`, 'audit.redact[0]', 'must be a JSON Pointer starting with "/"'],
  ])('names the key a config meant, and says what is required: %#', (text, path, message) => {
    const err = errorOf(text);
    expect(err.path).toBe(path);
    expect(err.message).toContain(message);
  });

  it('takes [audit] record_args and redact, and {pid} in the audit path (one log per proxy process)', () => {
    const config = parse(
      `${BASE}[keys]\npath = "k"\n[audit]\npath = "audit/mcp-{pid}.jsonl"\nrecord_args = true\nredact = ["/password", "/auth/token"]\n`,
    );
    expect(config.audit).toEqual({
      path: `/etc/kavach/audit/mcp-${process.pid}.jsonl`,
      recordArgs: true,
      redact: ['/password', '/auth/token'],
    });
    expect(config.tools.pinsFile).toBe('/etc/kavach/audit/tool-pins.json');
    expect(parse(`${BASE}[keys]\npath = "k"\n[audit]\npath = "a.jsonl"\n`).audit).toEqual({
      path: '/etc/kavach/a.jsonl',
      recordArgs: false,
      redact: [],
    });
  });

  it('takes drift thresholds for busy services (1,000 calls a minute and more)', () => {
    expect(parse(`${BASE}[drift]\nwarn_actions_per_minute = 5000\nmax_actions_per_minute = 20000\n`).drift).toMatchObject({
      warnActionsPerMinute: 5000,
      maxActionsPerMinute: 20000,
    });
  });

  it('reads [redis] with its command deadline', () => {
    expect(parse(`${BASE}[redis]\nurl = "redis://10.0.0.5:6379"\ncommand_timeout_ms = 250\n`).redis).toEqual({
      url: 'redis://10.0.0.5:6379',
      commandTimeoutMs: 250,
    });
    expect(parse(`${BASE}[redis]\nurl = "redis://10.0.0.5:6379"\n`).redis).toEqual({ url: 'redis://10.0.0.5:6379' });
  });

  it("takes a stdio server's max_message_bytes (1 KiB to 256 MiB, a whole number), not an HTTP server's", () => {
    expect(parse(`${BASE}max_message_bytes = 52428800\n`).servers[0]).toMatchObject({ name: 'fs', maxMessageBytes: 52_428_800 });
    expect(parse(BASE).servers[0]).not.toHaveProperty('maxMessageBytes');
    for (const bad of ['0', '1023', '268435457', '4096.5', '"10MB"']) {
      const err = errorOf(`${BASE}max_message_bytes = ${bad}\n`);
      expect(err.path, bad).toBe('servers.fs.max_message_bytes');
    }
    const remote = errorOf('[gate]\npolicy = "p.toml"\n[servers.r]\nurl = "https://x.example/mcp"\nmax_message_bytes = 4096\n');
    expect(remote.path).toBe('servers.r.max_message_bytes');
    expect(remote.message).toContain('unknown key');
  });

  it('refuses an unset ${VAR} instead of reading it as empty', () => {
    const err = errorOf(`${BASE}env = { TOKEN = "\${MISSING_TOKEN}" }\n`);
    expect(err.path).toBe('servers.fs.env.TOKEN');
    expect(err.message).toContain('MISSING_TOKEN is not set');
  });

  it('reads the JSON form too', () => {
    const config = parseConfigText(JSON.stringify({ gate: { policy: 'p.json' }, servers: { fs: { command: 'node' } } }), 'json', {
      file: '/c/kavach.json',
    });
    expect(config.gate.policy).toBe('/c/p.json');
  });

  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.1:8787')).toEqual({ host: '127.0.0.1', port: 8787 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(() => parseListen('localhost')).toThrow(ConfigError);
  });

  it('refuses a server name ending in "_" (<server>__<tool> would no longer say where the server name ends)', () => {
    const config = (servers: Record<string, unknown>) => parseConfig({ gate: { policy: 'p.toml' }, servers });
    // "a" + "__" + "_x" and "a_" + "__" + "x" are both "a___x": one server's tool could take the other's name.
    expect(() => config({ a: { command: 'x' }, a_: { command: 'y' } })).toThrow(ConfigError);
    expect(() => config({ 'a-': { command: 'x' }, a_b: { command: 'y' } })).not.toThrow();
  });

  describe('[approvals]', () => {
    const TOKEN = 'finance-lead-token-0123456789';

    it('defaults: elicit, a 2m hold, the socket next to the audit log (else the config), no page', () => {
      expect(parse(BASE).approvals).toEqual({ elicit: true, holdMs: 120_000, socketDir: '/etc/kavach/kavach-approvals', approvers: [] });
      expect(parse(`${BASE}[keys]\npath = "k"\n[audit]\npath = "audit/mcp.jsonl"\n`).approvals.socketDir).toBe(
        '/etc/kavach/audit/kavach-approvals',
      );
    });

    it('reads the table, approvers with their principals and roles (kind user by default)', () => {
      const config = parse(
        `${BASE}[approvals]\nelicit = false\nhold = "30s"\nlisten = "127.0.0.1:8788"\nclient_approver = "alice"\nsocket_dir = "run/approvals"\n` +
          `[[approvals.approvers]]\ntoken = "\${LEAD}"\nprincipal_id = "alice"\nroles = ["finance"]\n[[approvals.approvers]]\nprincipal_id = "ops-bot"\nprincipal_kind = "service"\n`,
        { LEAD: TOKEN },
      );
      expect(config.approvals).toEqual({
        elicit: false,
        holdMs: 30_000,
        listen: '127.0.0.1:8788',
        clientApprover: 'alice',
        socketDir: '/etc/kavach/run/approvals',
        approvers: [
          { token: TOKEN, principalId: 'alice', principalKind: 'user', roles: ['finance'] },
          { principalId: 'ops-bot', principalKind: 'service', roles: [] },
        ],
      });
    });

    it('takes hold = 0 (answer at once)', () => {
      expect(parse(`${BASE}[approvals]\nhold = 0\n`).approvals.holdMs).toBe(0);
    });

    it.each([
      ['[approvals]\nhold = "2x"\n', 'approvals.hold'],
      ['[approvals]\nhold = "2d"\n', 'approvals.hold'],
      ['[approvals]\nelicit = "yes"\n', 'approvals.elicit'],
      ['[approvals]\nlisten = "8788"\n', 'approvals.listen'],
      [
        '[approvals]\nlisten = "nowhere"\n[[approvals.approvers]]\ntoken = "finance-lead-token-0123456789"\nprincipal_id = "a"\n',
        'approvals.listen',
      ],
      ['[approvals]\nelcit = true\n', 'approvals.elcit'],
      ['[[approvals.approvers]]\nprincipal_id = "a"\ntoken = "short"\n', 'approvals.approvers[0].token'],
      ['[[approvals.approvers]]\nprincipal_id = "a"\nprincipal_kind = "robot"\n', 'approvals.approvers[0].principal_kind'],
      ['[[approvals.approvers]]\nprincipal_id = "a"\n[[approvals.approvers]]\nprincipal_id = "a"\n', 'approvals.approvers[1].principal_id'],
      [
        '[[approvals.approvers]]\nprincipal_id = "a"\ntoken = "same-token-0123456789"\n[[approvals.approvers]]\nprincipal_id = "b"\ntoken = "same-token-0123456789"\n',
        'approvals.approvers[1].token',
      ],
      ['[[approvals.approvers]]\nprincipal_id = "a"\nrole = ["x"]\n', 'approvals.approvers[0].role'],
    ])('refuses %j at %s', (table, path) => {
      expect(errorOf(`${BASE}${table}`).path).toBe(path);
    });

    it('reads [audit] redact (JSON Pointers, checked)', () => {
      expect(parse(`${BASE}[keys]\npath = "k"\n[audit]\npath = "a.jsonl"\nredact = ["/content", "/a~1b"]\n`).audit?.redact).toEqual([
        '/content',
        '/a~1b',
      ]);
      expect(errorOf(`${BASE}[keys]\npath = "k"\n[audit]\npath = "a.jsonl"\nredact = ["content"]\n`).path).toBe('audit.redact[0]');
    });

    it('reads [redis] key_prefix (no glob characters)', () => {
      expect(parse(`${BASE}[redis]\nurl = "redis://127.0.0.1:6379"\nkey_prefix = "team-a:"\n`).redis?.keyPrefix).toBe('team-a:');
      expect(errorOf(`${BASE}[redis]\nurl = "redis://127.0.0.1:6379"\nkey_prefix = "team*"\n`).path).toBe('redis.key_prefix');
    });

    it('reads [[http.clients]] approver', () => {
      const config = parse(
        `${BASE}[http]\n[[http.clients]]\ntoken = "${TOKEN}"\nprincipal_id = "ci"\nprincipal_kind = "service"\napprover = "alice"\n`,
      );
      expect(config.http?.clients[0]?.approver).toBe('alice');
    });
  });
});
