/**
 * Human approval through the real proxy process in front of server-filesystem (DESIGN §11): the
 * SDK's real client answering elicitation, a client without it held while `kavach approvals`
 * decides from another process, and the audit log verified afterwards.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ElicitRequestSchema, type ElicitRequest, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, FILESYSTEM, keygen, q, REPO, runCli, startProxy, tempDir, textOf, write, type RunningProxy } from './proxy-harness.ts';

let dir: string;
let root: string;
let config: string;

beforeAll(async () => {
  dir = tempDir();
  root = join(dir, 'work');
  mkdirSync(join(root, 'scratch'), { recursive: true });
  await keygen(dir);
  // The example policy, pointed at this test's work directory.
  write(join(dir, 'policy.toml'), readFileSync(join(REPO, 'policies/fs-approvals.toml'), 'utf8').replaceAll('/home/alice/work', root));
  config = write(
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
redact = ["/content"]
[approvals]
hold = "2m"
client_approver = "alice"
[[approvals.approvers]]
principal_id = "alice"
[[approvals.approvers]]
principal_id = "bob"
roles = ["fs-owner"]
token = "bob-approver-token-0123456789"
[servers.fs]
command = ${q(process.execPath)}
args = [${q(FILESYSTEM)}, ${q(root)}]
`,
  );
}, 60_000);

afterAll(() => cleanup(dir));

/** A barrier: resolves with the first value given. */
function barrier<T>(): { promise: Promise<T>; next: (v: T) => void } {
  let next!: (v: T) => void;
  const promise = new Promise<T>((r) => (next = r));
  return { promise, next };
}

describe('a client that declares elicitation', () => {
  let proxy: RunningProxy;
  const asked: ElicitRequest[] = [];
  let answer: ElicitResult = { action: 'decline' };

  beforeAll(async () => {
    proxy = await startProxy(config, { capabilities: { elicitation: {} } });
    proxy.client.setRequestHandler(ElicitRequestSchema, (req) => {
      asked.push(req);
      return answer;
    });
  }, 60_000);
  afterAll(async () => proxy?.close());

  it('asks its user; approved, the write happens', async () => {
    answer = { action: 'accept', content: { decision: 'approve', note: 'fine by me' } };
    const path = join(root, 'approved.txt');
    const result = await proxy.client.callTool({ name: 'fs__write_file', arguments: { path, content: 'secret-content-7f3a' } });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(readFileSync(path, 'utf8')).toBe('secret-content-7f3a');
    const message = asked.at(-1)?.params.message ?? '';
    expect(message).toContain('fs__write_file');
    expect(message).toContain(path);
    expect(message).toContain('a write outside scratch/');
    // [audit] redact keeps the content from the approver's eyes too.
    expect(message).not.toContain('secret-content-7f3a');
  });

  it('declined, the write never happens', async () => {
    answer = { action: 'decline' };
    const path = join(root, 'declined.txt');
    const result = await proxy.client.callTool({ name: 'fs__write_file', arguments: { path, content: 'no' } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('[APPROVAL_DENIED]');
    expect(existsSync(path)).toBe(false);
    // Asking again with the same call does not ask again: it was denied.
    const again = await proxy.client.callTool({ name: 'fs__write_file', arguments: { path, content: 'no' } });
    expect(textOf(again)).toContain('[APPROVAL_DENIED]');
    expect(existsSync(path)).toBe(false);
  });

  it('asks nobody for a write inside scratch/', async () => {
    const before = asked.length;
    const result = await proxy.client.callTool({
      name: 'fs__write_file',
      arguments: { path: join(root, 'scratch/free.txt'), content: 'ok' },
    });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(asked).toHaveLength(before);
  });
});

describe('a client without elicitation, decided with `kavach approvals` from another process', () => {
  let proxy: RunningProxy;

  beforeAll(async () => {
    proxy = await startProxy(config);
  }, 60_000);
  afterAll(async () => proxy?.close());

  /** Starts the call and resolves with its request id once the proxy says it is holding it. */
  function heldCall(path: string, content: string): { result: Promise<unknown>; id: Promise<string> } {
    const held = barrier<string>();
    const result = proxy.client.callTool({ name: 'fs__write_file', arguments: { path, content } }, undefined, {
      onprogress: (p) => {
        const id = /waiting for approval (\S+)/.exec(p.message ?? '')?.[1];
        if (id) held.next(id);
      },
      resetTimeoutOnProgress: true,
    });
    return { result, id: held.promise };
  }

  it('holds the call; `kavach approvals grant` lets it run', async () => {
    const path = join(root, 'granted.txt');
    const call = heldCall(path, 'granted-content-91b2');
    const id = await call.id;
    const list = await runCli(['approvals', 'list', '--config', config]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toContain('fs.write_file');
    const show = await runCli(['approvals', 'show', id, '--config', config]);
    expect(show.stdout).toContain(path);
    expect(show.stdout).not.toContain('granted-content-91b2');
    // Not theirs to decide: the caller itself, and someone the policy does not list.
    const self = await runCli(['approvals', 'grant', id, '--config', config, '--as', 'alice-laptop']);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('SELF_APPROVAL');
    const stranger = await runCli(['approvals', 'grant', id, '--config', config, '--as', 'mallory']);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toContain('NOT_AN_APPROVER');
    expect(existsSync(path)).toBe(false);
    // bob has the fs-owner role in [[approvals.approvers]], and a token: his name alone (which
    // anything running as this user could claim) does not decide.
    const named = await runCli(['approvals', 'grant', id, '--config', config, '--as', 'bob']);
    expect(named.code).toBe(1);
    expect(named.stderr).toContain('NOT_AN_APPROVER');
    expect(named.stderr).toContain('KAVACH_APPROVER_TOKEN');
    const grant = await runCli(['approvals', 'grant', id, '--config', config, '--as', 'bob', '--note', 'ticket 42'], {
      KAVACH_APPROVER_TOKEN: 'bob-approver-token-0123456789',
    });
    expect(grant.code, grant.stderr).toBe(0);
    expect(grant.stdout).toContain(`granted ${id} as bob`);
    const result = await call.result;
    expect((result as { isError?: boolean }).isError, textOf(result)).toBeFalsy();
    expect(readFileSync(path, 'utf8')).toBe('granted-content-91b2');
  });

  it('holds the call; `kavach approvals deny` refuses it and nothing is written', async () => {
    const path = join(root, 'denied.txt');
    const call = heldCall(path, 'nope');
    const id = await call.id;
    const deny = await runCli(['approvals', 'deny', id, '--config', config, '--as', 'alice', '--note', 'not today']);
    expect(deny.code, deny.stderr).toBe(0);
    const result = await call.result;
    expect(textOf(result)).toContain('[APPROVAL_DENIED]');
    expect(existsSync(path)).toBe(false);
  });

  it('says which request is unknown', async () => {
    const grant = await runCli(['approvals', 'grant', 'no-such-request', '--config', config, '--as', 'alice']);
    expect(grant.code).toBe(1);
    expect(grant.stderr).toContain('NOT_FOUND');
  });
});

describe('afterwards', () => {
  it('the audit log verifies and shows every request and decision', async () => {
    const log = join(dir, 'audit/mcp.jsonl');
    const verify = await runCli(['audit', 'verify', log, '--keys', join(dir, 'keys/public.json')]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const shown = await runCli(['audit', 'show', log, '--type', 'approval', '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    const records = shown.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const events = records.map((r) => `${String(r.event)}:${String(r.approver ?? '')}`);
    expect(events).toEqual(expect.arrayContaining(['requested:', 'granted:alice', 'denied:alice', 'granted:bob', 'used:']));
    expect(records.find((r) => r.approver === 'bob')?.note).toBe('ticket 42');
  });
});
