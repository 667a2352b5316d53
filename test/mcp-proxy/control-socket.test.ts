import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { connectAll, requestsOf } from '../../src/mcp-proxy/approvals/control-client.ts';
import { serveControlSocket, type ControlSocket } from '../../src/mcp-proxy/approvals/control-socket.ts';
import { parseConfig, type ApprovalsConfig } from '../../src/mcp-proxy/config.ts';

const POLICY = `
[[policy]]
name = "refunds"
description = "big refunds"
effect = "approve"
conditions = [ { action = "pay.refund" } ]
approval = { approvers = ["role:finance"] }
`;

function approvalsConfig(socketDir: string): ApprovalsConfig {
  return parseConfig({
    gate: { policy: 'p.toml' },
    servers: { pay: { command: 'x' } },
    approvals: { socket_dir: socketDir, approvers: [{ principal_id: 'fin', roles: ['finance'] }] },
  }).approvals;
}

async function pendingRequest(gate: Gate, amount: number): Promise<string> {
  const v = await gate.evaluate({ principalId: 'bot', principalKind: 'agent', actionName: 'pay.refund', params: { amount } });
  if (v.kind !== 'refuse' || !v.approval) throw new Error('expected APPROVAL_REQUIRED');
  return v.approval.id;
}

/** One raw request line, one answer line. */
function rawAsk(path: string, line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let got = '';
    s.on('data', (c) => {
      got += c.toString();
      const nl = got.indexOf('\n');
      if (nl >= 0) {
        s.end();
        resolve(JSON.parse(got.slice(0, nl)) as Record<string, unknown>);
      }
    });
    s.on('error', reject);
    s.write(`${line}\n`);
  });
}

describe('the approvals socket of a running proxy', () => {
  let dir: string;
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(gate: Gate, approvals: ApprovalsConfig): Promise<ControlSocket> {
    const socket = await serveControlSocket(
      () => gate,
      approvals,
      () => undefined,
    );
    open.push(socket, gate);
    return socket;
  }

  it('lives in a 0700 directory as a 0600 socket named for the process, and is removed on close', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kv-sock-'));
    const approvals = approvalsConfig(join(dir, 'approvals'));
    const gate = Gate.fromToml(POLICY);
    const socket = await serve(gate, approvals);
    expect(socket.path).toBe(join(dir, 'approvals', `${process.pid}.sock`));
    expect(statSync(join(dir, 'approvals')).mode & 0o777).toBe(0o700);
    expect(statSync(socket.path).mode & 0o777).toBe(0o600);
    await socket.close();
    expect(existsSync(socket.path)).toBe(false);
  });

  it('lists, shows and decides; the approver named by `as` gets the roles of their approvers entry', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kv-sock-'));
    const gate = Gate.fromToml(POLICY);
    await serve(gate, approvalsConfig(dir));
    const id = await pendingRequest(gate, 900);
    const [proxy] = await connectAll(dir);
    if (!proxy) throw new Error('no proxy found');
    try {
      expect(requestsOf(await proxy.ask({ op: 'list', status: 'pending' })).map((r) => r.id)).toEqual([id]);
      expect(requestsOf(await proxy.ask({ op: 'get', id }))[0]?.args).toEqual({ amount: 900 });
      expect(await proxy.ask({ op: 'get', id: 'nope' })).toEqual({ ok: true, request: null });
      // Without an approvers entry, no roles: not among role:finance.
      expect(await proxy.ask({ op: 'decide', id, decision: 'grant', as: 'eve' })).toMatchObject({ ok: false, code: 'NOT_AN_APPROVER' });
      expect(await proxy.ask({ op: 'decide', id, decision: 'grant', as: 'bot' })).toMatchObject({ ok: false, code: 'SELF_APPROVAL' });
      const granted = await proxy.ask({ op: 'decide', id, decision: 'grant', as: 'fin', note: 'ok' });
      expect(requestsOf(granted)[0]?.decisions[0]).toMatchObject({ approver: { id: 'fin', kind: 'user', roles: ['finance'] }, note: 'ok' });
      expect(await proxy.ask({ op: 'decide', id, decision: 'deny', as: 'fin' })).toMatchObject({ ok: false, code: 'NOT_PENDING' });
    } finally {
      proxy.close();
    }
  });

  it('an approver with a token decides only with it: a name alone, from whoever opens the socket, does not count', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kv-sock-'));
    const gate = Gate.fromToml(POLICY.replace('approvers = ["role:finance"]', 'approvers = ["role:finance"], quorum = 2'));
    const token = 'cfo-token-0123456789abcdef';
    const approvals = parseConfig({
      gate: { policy: 'p.toml' },
      servers: { pay: { command: 'x' } },
      approvals: {
        socket_dir: dir,
        approvers: [
          { principal_id: 'cfo', roles: ['finance'], token },
          { principal_id: 'controller', roles: ['finance'], token: 'controller-token-0123456789' },
        ],
      },
    }).approvals;
    await serve(gate, approvals);
    const id = await pendingRequest(gate, 900);
    const [proxy] = await connectAll(dir);
    if (!proxy) throw new Error('no proxy found');
    try {
      // An agent on the same account naming two approvers to meet a quorum of two: neither counts.
      for (const as of ['cfo', 'controller'])
        expect(await proxy.ask({ op: 'decide', id, decision: 'grant', as })).toMatchObject({ ok: false, code: 'NOT_AN_APPROVER' });
      expect(await proxy.ask({ op: 'decide', id, decision: 'grant', as: 'cfo', token: 'controller-token-0123456789' })).toMatchObject({
        ok: false,
        code: 'NOT_AN_APPROVER',
      });
      expect((await gate.approvals.get(id))?.decisions).toEqual([]);
      const granted = await proxy.ask({ op: 'decide', id, decision: 'grant', as: 'cfo', token });
      expect(requestsOf(granted)[0]).toMatchObject({ status: 'pending', decisions: [{ approver: { id: 'cfo' } }] });
    } finally {
      proxy.close();
    }
  });

  it.each([
    ['not JSON', '{'],
    ['an unknown op', '{"op":"delete","id":"x"}'],
    ['an unknown key', '{"op":"list","all":true}'],
    ['a bad decision', '{"op":"decide","id":"x","decision":"maybe","as":"fin"}'],
    ['a decide without as', '{"op":"decide","id":"x","decision":"grant"}'],
  ])('answers %s with BAD_REQUEST', async (_what, line) => {
    dir = mkdtempSync(join(tmpdir(), 'kv-sock-'));
    const socket = await serve(Gate.fromToml(POLICY), approvalsConfig(dir));
    expect(await rawAsk(socket.path, line)).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
  });

  it('removes sockets whose process is gone, and the client skips what does not answer', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kv-sock-'));
    // A pid that cannot exist (above the kernel's pid_max) left a socket file behind.
    const stale = join(dir, '2147483646.sock');
    writeFileSync(stale, '');
    await serve(Gate.fromToml(POLICY), approvalsConfig(dir));
    expect(existsSync(stale)).toBe(false);
    writeFileSync(join(dir, '1.sock'), ''); // not a socket: nobody answers there
    const found = await connectAll(dir);
    expect(found.map((c) => c.path)).toEqual([join(dir, `${process.pid}.sock`)]);
    for (const c of found) c.close();
  });
});
