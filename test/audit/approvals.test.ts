import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/audit.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { hashArgs } from '../../src/engine/canonical-json.ts';
import { Gate } from '../../src/engine/gate.ts';
import { readAuditLog, verifyAuditLog, type ApprovalRecord, type AuditRecord, type VerdictRecord } from '../../src/audit/index.ts';
import { formatRecord } from '../../src/audit/timeline.ts';
import { key, logNamer, openLog, tempDir } from './helpers.ts';

const dir = tempDir();
const fresh = logNamer(dir, 'approvals');

const POLICY = {
  policies: [
    {
      name: 'big_refunds',
      description: 'refunds of 500 or more',
      effect: 'approve',
      conditions: [{ action: 'refunds.issue' }, { param_min: { field: 'amount', min: 500 } }],
      approval: { approvers: ['role:finance'], timeout: '10m' },
    },
  ],
};
const call = (amount: number) => ({
  principalId: 'agent-7',
  principalKind: 'agent' as const,
  actionName: 'refunds.issue',
  sessionId: 's-1',
  params: { amount },
});

async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return { code: await run(argv), out };
  } finally {
    vi.restoreAllMocks();
  }
}
afterEach(() => vi.restoreAllMocks());

describe('approval records in the audit log', () => {
  it('records request, decisions, use and expiry; the log verifies; show and stats read them', async () => {
    const path = fresh();
    const log = await openLog(path);
    let now = Date.parse('2026-03-01T10:00:00Z');
    const gate = Gate.fromDict(POLICY, {
      audit: log,
      drift: false,
      clock: () => now,
      signer: PermitSigner.fromKeyPair(key(), { mode: 'hybrid' }),
    });
    const asked = await gate.evaluate(call(600));
    const id = asked.kind === 'refuse' ? (asked.approval?.id ?? '') : '';
    await gate.approvals.decide(id, {
      approver: { id: 'fin-1', kind: 'user', roles: ['finance'] },
      decision: 'grant',
      note: 'customer verified',
    });
    const permitted = await gate.evaluate(call(600));
    const denyAsk = await gate.evaluate(call(900));
    const deniedId = denyAsk.kind === 'refuse' ? (denyAsk.approval?.id ?? '') : '';
    await gate.approvals.decide(deniedId, { approver: { id: 'fin-2', kind: 'user', roles: ['finance'] }, decision: 'deny' });
    const lapsing = await gate.evaluate(call(700));
    now += 10 * 60_000;
    await gate.approvals.list();
    await gate.close();
    await log.close();

    const report = await verifyAuditLog(path, key().publicKeys());
    const records: AuditRecord[] = (await readAuditLog(path, { keys: key().publicKeys() })).records;
    const approvals = records.filter((r): r is ApprovalRecord => r.type === 'approval');
    expect(approvals.map((r) => `${r.event}:${r.status}`)).toEqual([
      'requested:pending',
      'granted:granted',
      'used:used',
      'requested:pending',
      'denied:denied',
      'requested:pending',
      'expired:expired',
    ]);
    expect(approvals[1]).toMatchObject({
      approval: id,
      policy: 'big_refunds',
      principal: 'agent-7',
      kind: 'agent',
      action: 'refunds.issue',
      session: 's-1',
      args: hashArgs({ amount: 600 }),
      approver: 'fin-1',
      approverKind: 'user',
      approverRoles: ['finance'],
      note: 'customer verified',
    });
    expect(approvals[2]).toMatchObject({ approval: id, evaluationId: permitted.evaluationId });
    expect(approvals[6]).toMatchObject({ approval: lapsing.kind === 'refuse' ? lapsing.approval?.id : '' });
    const verdicts = records.filter((r): r is VerdictRecord => r.type === 'verdict');
    expect(verdicts.map((v) => [v.code ?? v.verdict, v.approval])).toEqual([
      ['APPROVAL_REQUIRED', id],
      ['permit', id],
      ['APPROVAL_REQUIRED', deniedId],
      ['APPROVAL_REQUIRED', expect.any(String)],
    ]);
    expect(report.byApproval).toEqual({ requested: 3, granted: 1, used: 1, denied: 1, expired: 1 });
    expect(report.byCode).toMatchObject({ APPROVAL_REQUIRED: 3 });

    const line = formatRecord(approvals[1] as ApprovalRecord);
    expect(line).toContain('APPROVAL');
    expect(line).toContain('granted agent-7 (agent)  refunds.issue');
    expect(line).toContain('by fin-1 (user) [finance]');
    expect(line).toContain('note: customer verified');

    writeFileSync(join(dir, 'public.json'), JSON.stringify(key().publicKeys()));
    const shown = await cli('show', path, '--type', 'approval', '--principal', 'agent-7');
    expect(shown.code).toBe(0);
    expect(shown.out.split('\n').filter((l) => l.includes('APPROVAL'))).toHaveLength(7);
    const stats = await cli('stats', path, '--keys', join(dir, 'public.json'));
    expect(stats.code).toBe(0);
    expect(stats.out).toMatch(/approvals +requested 3/);
  });

  it('an approval record whose fields were edited fails verification at its index', async () => {
    const path = fresh();
    const log = await openLog(path);
    const gate = Gate.fromDict(POLICY, { audit: log, drift: false });
    await gate.evaluate(call(600));
    await log.close();
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(path, 'utf8').replace('"principal":"agent-7"', '"principal":"agent-8"');
    writeFileSync(path, text);
    await expect(verifyAuditLog(path, key().publicKeys())).rejects.toMatchObject({ code: 'HASH_MISMATCH', index: 1 });
  });
});
