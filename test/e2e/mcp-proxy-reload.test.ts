import { join } from 'node:path';
import { CallToolResultSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE, cleanup, q, read, startProxy, tempDir, textOf, waitFor, write, type RunningProxy } from './proxy-harness.ts';

const PERMIT_ALL = `
[[policy]]
name = "fixture"
effect = "permit"
conditions = [{ action = ["fx.slow", "fx.pid"] }]
`;

describe('policy reload while the proxy runs', () => {
  let dir: string;
  let policy: string;
  let events: string;
  let proxy: RunningProxy;
  let toolListChanges = 0;

  beforeAll(async () => {
    dir = tempDir();
    events = join(dir, 'events.log');
    policy = write(join(dir, 'policy.toml'), PERMIT_ALL);
    write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
[identity]
principal_id = "ops-agent"
principal_kind = "agent"
[servers.fx]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]
env = { FIXTURE_EVENTS = ${q(events)} }
`,
    );
    proxy = await startProxy(join(dir, 'kavach.toml'));
    proxy.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      toolListChanges++;
    });
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  const pid = () => proxy.client.callTool({ name: 'fx__pid', arguments: {} });

  it('a bad policy file keeps the old set in force and says why on stderr', async () => {
    expect((await pid()).isError).toBeFalsy();
    write(policy, '[[policy]]\nname = "broken"\neffect = "permit"\nconditions = [{ acton = "fx.*" }]\n');
    await waitFor('the failed reload to be logged', () => proxy.stderr().includes('failed, the previous policy set stays in force'));
    expect(proxy.stderr()).toContain('acton');
    expect((await pid()).isError).toBeFalsy();
  });

  it('the kill switch (an empty policy file) refuses new calls while in-flight calls finish', async () => {
    write(policy, PERMIT_ALL);
    await waitFor('the good policy to be back', () => proxy.stderr().includes('policy reloaded (file changed): 1 policy in force'));
    const changesBefore = toolListChanges;
    const inFlight = proxy.client.request(
      { method: 'tools/call', params: { name: 'fx__slow', arguments: { ms: 1_500 } } },
      CallToolResultSchema,
    );
    await waitFor('the slow call to start upstream', () => read(events).includes('slow start'));
    write(policy, '');
    const refused = await waitFor('new calls to be refused', async () => {
      const r = await pid();
      return r.isError ? r : undefined;
    });
    expect(textOf(refused)).toContain('[NO_POLICY_MATCH]');
    const finished = await inFlight;
    expect(textOf(finished)).toBe('slept 1500');
    expect((await proxy.client.listTools()).tools).toEqual([]);
    await waitFor('a tools/list_changed notification', () => toolListChanges > changesBefore);
  });

  it('SIGHUP reloads the policy file', async () => {
    // Write without waiting for the watcher; SIGHUP alone must be enough to pick it up.
    write(policy, PERMIT_ALL);
    process.kill(proxy.pid, 'SIGHUP');
    await waitFor('the SIGHUP reload to be logged', () => proxy.stderr().includes('policy reloaded (SIGHUP): 1 policy in force'));
    expect((await pid()).isError).toBeFalsy();
  });
});

describe('observe mode', () => {
  let dir: string;
  let proxy: RunningProxy;

  beforeAll(async () => {
    dir = tempDir();
    write(join(dir, 'policy.toml'), '[[policy]]\nname = "only-pid"\neffect = "permit"\nconditions = [{ action = "fx.pid" }]\n');
    write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
observe_only = true
[identity]
principal_id = "ops-agent"
principal_kind = "agent"
[servers.fx]
command = ${q(process.execPath)}
args = [${q(FIXTURE)}]
`,
    );
    proxy = await startProxy(join(dir, 'kavach.toml'));
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    cleanup(dir);
  });

  it('forwards calls the policy would refuse and reports what enforcement would have said', async () => {
    const names = (await proxy.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('fx__slow');
    const result = await proxy.client.callTool({ name: 'fx__slow', arguments: { ms: 10 } });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe('slept 10');
    expect(result._meta?.['dev.kavach/observed']).toMatchObject({ kind: 'refuse', code: 'NO_POLICY_MATCH' });
    const permitted = await proxy.client.callTool({ name: 'fx__pid', arguments: {} });
    expect(permitted._meta?.['dev.kavach/observed']).toBeUndefined();
  });
});
