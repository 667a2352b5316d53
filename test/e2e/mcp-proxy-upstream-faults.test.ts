import { join } from 'node:path';
import { LoggingMessageNotificationSchema, type LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAuditLog } from '../../src/audit/index.ts';
import { hashDefinition, PIN_ENTRY_VERSION } from '../../src/mcp-proxy/pinning.ts';
import { cleanup, FIXTURE, keygen, q, startProxy, tempDir, textOf, waitFor, write, type RunningProxy } from './proxy-harness.ts';

/** What the proxy itself told the client through MCP logging. */
type Notice = LoggingMessageNotification['params'];

const LIMIT = 65_536;
/** A tool `nope` listed in an earlier run: pinned, so its name is known while the server cannot start. */
const NOPE_READ = { name: 'read', description: 'reads a note', inputSchema: { type: 'object', properties: {} } };

describe('kavach mcp when upstream servers fail', () => {
  let dir: string;
  let proxy: RunningProxy;
  const notices: Notice[] = [];
  const noticesOf = (server: string) => notices.filter((n) => n.logger === 'kavach' && String(n.data).includes(`server '${server}'`));
  const call = (name: string, args: Record<string, unknown> = {}) => proxy.client.callTool({ name, arguments: args });

  beforeAll(async () => {
    dir = tempDir();
    await keygen(dir);
    write(
      join(dir, 'policy.toml'),
      `
[[policy]]
name = "all"
effect = "permit"
conditions = [{ action = ["fx.*", "crashy.*", "nope.*", "quits.*"] }]
`,
    );
    write(
      join(dir, 'pins.json'),
      JSON.stringify({
        version: 1,
        tools: {
          'nope.read': { v: PIN_ENTRY_VERSION, hash: hashDefinition(NOPE_READ), definition: NOPE_READ, at: '2026-01-01T00:00:00.000Z' },
        },
        pending: {},
      }),
    );
    write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
[identity]
principal_id = "alice-laptop"
principal_kind = "agent"
[keys]
path = "keys/secret.key"
[audit]
path = "audit/mcp.jsonl"
[tools]
pins_file = "pins.json"
[servers.fx]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]
max_message_bytes = ${LIMIT}
[servers.crashy]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]
[servers.nope]
command = "nope-server-kavach-test"
[servers.quits]
command = ${q(process.execPath)}
args = ["-e", "process.exit(3)"]
`,
    );
    proxy = await startProxy(join(dir, 'kavach.toml'), {
      beforeConnect: (client) => client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void notices.push(n.params)),
    });
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  it('a server whose command does not exist: its pinned tools are listed and answer UPSTREAM_UNAVAILABLE with the reason; the client is told', async () => {
    const { tools } = await proxy.client.listTools();
    expect(tools.map((t) => t.name)).toContain('nope__read');
    const result = await call('nope__read');
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('[UPSTREAM_UNAVAILABLE]');
    expect(textOf(result)).toContain("command 'nope-server-kavach-test' not found");
    const told = await waitFor('the notice about nope', () => noticesOf('nope')[0]);
    expect(told.level).toBe('error');
    expect(told.data).toContain("command 'nope-server-kavach-test' not found");
    // Told once per outage, not once per retry.
    expect(noticesOf('nope')).toHaveLength(1);
  });

  it('a server that exits at once: the client is told the exit code', async () => {
    const told = await waitFor('the notice about quits', () => noticesOf('quits')[0]);
    expect(told.level).toBe('error');
    expect(told.data).toContain('the process exited with code 3 before it answered initialize');
  });

  it('a server that never came up and has no pins: a call naming it answers UPSTREAM_UNAVAILABLE with its reason, as the client was told', async () => {
    await waitFor('the notice about quits', () => noticesOf('quits')[0]);
    const result = await call('quits__hello');
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('[UPSTREAM_UNAVAILABLE]');
    expect(textOf(result)).toMatch(/server 'quits' is unavailable \(/i);
    expect(textOf(result)).toContain('the process exited with code 3');
    // A server that is up and offers no such tool: a tool that does not exist.
    const unknown = await call('fx__no_such_tool');
    expect(textOf(unknown)).toContain('[NO_POLICY_MATCH]');
    expect(textOf(unknown)).toContain('no server offers a tool named');
  });

  it('an answer over max_message_bytes fails only that call; the same upstream process answers the next', async () => {
    const pid = textOf(await call('fx__pid'));
    expect(pid).toMatch(/^\d+$/);
    const big = await call('fx__big', { bytes: LIMIT * 3 });
    expect(big.isError).toBe(true);
    expect(textOf(big)).toMatch(/^Server 'fx' failed to answer: the answer was \d+ bytes, over the limit of 65536 bytes for one message/);
    expect(textOf(big)).toContain('[servers.fx] max_message_bytes');
    // Under the limit, on the same process: not restarted.
    expect(textOf(await call('fx__big', { bytes: 1000 }))).toBe('x'.repeat(1000));
    expect(textOf(await call('fx__pid'))).toBe(pid);
    expect(proxy.stderr()).not.toMatch(/upstream fx: .*restarting/);
    expect(noticesOf('fx')).toEqual([]);
  });

  it('a crash: the client hears the server is down, when it restarts, and that it is back', async () => {
    await call('crashy__crash').catch(() => undefined);
    const down = await waitFor('the down notice', () => noticesOf('crashy').find((n) => String(n.data).includes('is down')));
    expect(down.level).toBe('warning');
    expect(down.data).toMatch(/^server 'crashy' is down: the connection closed \(the process exited with code 1\); restarting in 0\.5 s/);
    const back = await waitFor('the back notice', () => noticesOf('crashy').find((n) => String(n.data).includes('is back')));
    expect(back.level).toBe('info');
    expect(textOf(await call('crashy__pid'))).toMatch(/^\d+$/);
  });

  it('records the oversize answer as the call outcome, with why', async () => {
    await proxy.close();
    const { records } = await readAuditLog(join(dir, 'audit/mcp.jsonl'));
    const verdict = records.find((r) => r.type === 'verdict' && (r as unknown as { action: string }).action === 'fx.big') as unknown as {
      evaluationId: string;
    };
    const outcome = records.find((r) => r.type === 'outcome' && r.evaluationId === verdict.evaluationId) as unknown as {
      outcome: string;
      error?: string;
    };
    expect(outcome.outcome).toBe('upstream_failure');
    expect(outcome.error).toMatch(/over the limit of 65536 bytes for one message \(\[servers\.fx\] max_message_bytes\)/);
    // The call to the server that never came up: recorded as the proxy's own refusal, with the server's reason.
    const quits = records.find((r) => (r as unknown as { action?: string }).action === 'quits.hello') as unknown as Record<string, unknown>;
    expect(quits).toMatchObject({ type: 'kavach.mcp_refusal', code: 'UPSTREAM_UNAVAILABLE', principal: 'alice-laptop' });
    expect(String(quits.reason)).toContain('the process exited with code 3');
  });
});
