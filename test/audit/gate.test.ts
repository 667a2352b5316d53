import { describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { hashArgs } from '../../src/engine/canonical-json.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { readAuditLog, type AuditRecord, type VerdictRecord } from '../../src/audit/index.ts';
import { key, logNamer, openLog, tempDir } from './helpers.ts';

const dir = tempDir();
const fresh = logNamer(dir, 'gate');

const POLICY = {
  policies: [
    { name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read_*' }] },
    { name: 'no-rm', effect: 'refuse', conditions: [{ action: 'fs.rm' }] },
  ],
};

const call = (actionName: string, extra: Record<string, unknown> = {}) => ({
  principalId: 'agent-7',
  principalKind: 'agent' as const,
  actionName,
  sessionId: 's-1',
  params: { path: '/work/a.txt' },
  ...extra,
});

async function records(path: string): Promise<AuditRecord[]> {
  return (await readAuditLog(path, { keys: key().publicKeys() })).records;
}
const verdicts = (rs: AuditRecord[]): VerdictRecord[] => rs.filter((r): r is VerdictRecord => r.type === 'verdict');

describe('GateOptions.audit', () => {
  it('records every verdict with principal, action, code, reason, policy, session, args hash and permit jti', async () => {
    const path = fresh();
    const log = await openLog(path);
    const gate = Gate.fromDict(POLICY, { audit: log, drift: false, signer: PermitSigner.fromKeyPair(key(), { mode: 'hybrid' }) });
    const permit = await gate.evaluate(call('fs.read_file'));
    const denied = await gate.evaluate(call('fs.rm', { params: { path: '/' } }));
    const unmatched = await gate.evaluate(call('net.fetch'));
    const invalid = await gate.evaluate({ principalId: 'agent-7', principalKind: 'robot', actionName: 'x' } as never);
    await gate.close();
    await log.close();
    const [p, d, u, i] = verdicts(await records(path));
    expect(permit.kind === 'permit' && permit.permitId).toBeTruthy();
    expect(p).toMatchObject({
      evaluationId: permit.evaluationId,
      principal: 'agent-7',
      kind: 'agent',
      action: 'fs.read_file',
      verdict: 'permit',
      policy: 'reads',
      session: 's-1',
      args: hashArgs({ path: '/work/a.txt' }),
      permit: permit.kind === 'permit' ? permit.permitId : '',
    });
    expect(d).toMatchObject({
      evaluationId: denied.evaluationId,
      verdict: 'refuse',
      code: 'POLICY_DENIED',
      policy: 'no-rm',
      evaluator: 'policy',
      args: hashArgs({ path: '/' }),
    });
    expect(d?.reason).toContain('no-rm');
    expect(u).toMatchObject({ evaluationId: unmatched.evaluationId, verdict: 'refuse', code: 'NO_POLICY_MATCH' });
    expect(i).toMatchObject({ evaluationId: invalid.evaluationId, verdict: 'refuse', code: 'INVALID_CONTEXT' });
    expect(i?.args).toBeUndefined();
  });

  it('records observe-mode verdicts with their real outcome', async () => {
    const path = fresh();
    const log = await openLog(path);
    const gate = Gate.fromDict(POLICY, { audit: log, drift: false, observeOnly: true });
    const v = await gate.evaluate(call('fs.rm'));
    await log.close();
    expect(v.kind).toBe('permit');
    expect(verdicts(await records(path))[0]).toMatchObject({ verdict: 'refuse', code: 'POLICY_DENIED', observed: true });
  });

  it('records invalidations (drift and operator) and policy reloads, good and bad', async () => {
    const path = fresh();
    const log = await openLog(path);
    const gate = Gate.fromDict(POLICY, { audit: log, drift: { ipGeo: 'strict' } });
    await gate.evaluate(call('fs.read_file', { ip: '192.0.2.1' }));
    const drifted = await gate.evaluate(call('fs.read_file', { ip: '198.51.100.9' }));
    await gate.invalidate({ type: 'principal', principalId: 'agent-9' }, 'offboarded');
    gate.reload({ policies: [] });
    expect(() => gate.reload({ policies: [{ name: 'x', effect: 'maybe', conditions: [] }] })).toThrow();
    await log.close();
    const rs = await records(path);
    expect(drifted.kind).toBe('invalidate');
    expect(verdicts(rs)[1]).toMatchObject({ verdict: 'invalidate', code: 'SESSION_INVALID', evaluator: 'drift' });
    expect(rs.find((r) => r.type === 'invalidation')).toMatchObject({
      scope: { type: 'principal', principalId: 'agent-9' },
      reason: 'offboarded',
      remote: false,
    });
    const reloads = rs.filter((r) => r.type === 'policy_reload');
    expect(reloads).toMatchObject([
      { ok: true, policies: 0 },
      { ok: false, policies: 0 },
    ]);
  });

  it('refuses permits once the audit log cannot record them (fails closed)', async () => {
    const log = await openLog(fresh());
    const gate = Gate.fromDict(POLICY, { audit: log, drift: false });
    expect((await gate.evaluate(call('fs.read_file'))).kind).toBe('permit');
    await log.close();
    const after = await gate.evaluate(call('fs.read_file'));
    expect(after).toMatchObject({ kind: 'refuse', code: 'STORE_UNAVAILABLE', evaluator: 'audit' });
  });

  it('records concurrent evaluations, each durable before its verdict returns', async () => {
    const path = fresh();
    const log = await openLog(path);
    const gate = Gate.fromDict(POLICY, { audit: log, drift: false });
    const vs = await Promise.all(
      Array.from({ length: 200 }, (_, n) => gate.evaluate(call(n % 2 ? 'fs.read_file' : 'fs.rm', { sessionId: `s-${n}` }))),
    );
    const onDisk = verdicts((await readAuditLog(path)).records);
    expect(new Set(onDisk.map((r) => r.evaluationId))).toEqual(new Set(vs.map((v) => v.evaluationId)));
    await log.close();
    const { report } = await readAuditLog(path, { keys: key().publicKeys() });
    expect(report.byVerdict).toEqual({ permit: 100, refuse: 100 });
    expect(Object.keys(report.bySession)).toHaveLength(200);
  });
});
