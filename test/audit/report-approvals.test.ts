/**
 * The audit report's approval and session computations (#14, #16): each approval request folded
 * from its records (pending until decided, expired by record or by the clock), the tiles' counts,
 * and outcome records that name no session joined to their evaluation's session.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuditRecord } from '../../src/audit/index.ts';
import { buildAuditReport, buildReportModel, type ApprovalSummary, type ReportModel } from '../../src/audit/report/index.ts';
import { run as cli } from '../../src/cli/audit.ts';
import { key, tempDir } from './helpers.ts';
import { APPROVAL_END, APPROVAL_START, NOTE_BIDI, NOTE_SCRIPT, writeApprovalRun, type ApprovalRun } from './report-fixture.ts';

const dir = tempDir();
let run: ApprovalRun;
let model: ReportModel;

const MIN = 60_000;
const byId = (m: ReportModel, id: string): ApprovalSummary => {
  const a = m.approvals.find((x) => x.id === id);
  if (!a) throw new Error(`no approval ${id}`);
  return a;
};
/** What each row of an approval's chain is: its event, or the call's verdict and code. */
const chain = (m: ReportModel, a: ApprovalSummary): string[] =>
  a.rowIds.map((id) => {
    const r = m.rows[id];
    if (!r) return '?';
    return r.kind === 'approval' ? `${r.event}:${r.status}` : `call:${r.verdict}${r.code ? `:${r.code}` : ''}`;
  });

beforeAll(async () => {
  run = await writeApprovalRun(dir, key());
  ({ model } = await buildAuditReport([run.path], key().publicKeys(), { generatedAt: APPROVAL_END }));
}, 60_000);

afterEach(() => vi.restoreAllMocks());

describe('approval requests in a real gate run', () => {
  it('counts requests by status: one pending (a wire with one of two grants), one denied, two expired, one used', () => {
    expect(model.integrity.status).toBe('verified');
    expect(model.summary.totals.approvals).toEqual({ requests: 5, pending: 1, granted: 0, denied: 1, expired: 2, used: 1 });
    expect(model.rows.filter((r) => r.kind === 'approval')).toHaveLength(10);
  });

  it('links a request to its decision, its use and the calls that name it, in log order', () => {
    const a = byId(model, run.ids.granted);
    expect(a).toMatchObject({
      status: 'used',
      lapsed: false,
      session: run.sessions[0],
      principal: 'support-agent.eu-west-1.prod',
      tool: 'refunds.issue',
      policy: 'big_refunds_need_a_human',
      uses: 1,
      requestedAt: APPROVAL_START + 3 * MIN,
      decisions: [
        { approver: 'alice@finance', decision: 'grant', note: 'customer verified by phone; order #4471', time: APPROVAL_START + 5 * MIN },
      ],
    });
    expect(chain(model, a)).toEqual(['requested:pending', 'call:refuse:APPROVAL_REQUIRED', 'granted:granted', 'used:used', 'call:permit']);
    const granted = model.rows.find((r) => r.approval === run.ids.granted && r.event === 'granted');
    expect(granted).toMatchObject({ kind: 'approval', approver: 'alice@finance', session: run.sessions[0] });
    expect(granted?.detail).toBe('granted by alice@finance, usable until 2026-03-14 10:10:00 UTC');
  });

  it('keeps a request pending after a grant that does not reach the quorum', () => {
    const a = byId(model, run.ids.quorumPending);
    expect(a).toMatchObject({
      status: 'pending',
      lapsed: false,
      decisions: [{ approver: 'carol@treasury', decision: 'grant', note: NOTE_BIDI }],
    });
    expect(chain(model, a)).toEqual(['requested:pending', 'call:refuse:APPROVAL_REQUIRED', 'granted:pending']);
    expect(model.rows[a.rowIds[2] as number]?.detail).toBe('granted by carol@treasury; still pending: more approvers must grant');
  });

  it('keeps the denier and their note verbatim (markup and bidi characters are data here; the page shows them as text)', () => {
    const a = byId(model, run.ids.denied);
    expect(a).toMatchObject({ status: 'denied', decisions: [{ approver: 'bob@finance', decision: 'deny', note: NOTE_SCRIPT }] });
    expect(chain(model, a)).toEqual(['requested:pending', 'call:refuse:APPROVAL_REQUIRED', 'denied:denied', 'call:refuse:APPROVAL_DENIED']);
    expect(model.rows.find((r) => r.event === 'granted' && r.approval === run.ids.quorumPending)?.note).toBe(NOTE_BIDI);
  });

  it('counts a request expired by its record, and one whose time ran out with no record (lapsed)', () => {
    const recorded = byId(model, run.ids.expired);
    expect(recorded).toMatchObject({ status: 'expired', lapsed: false });
    expect(chain(model, recorded)).toEqual(['requested:pending', 'call:refuse:APPROVAL_REQUIRED', 'expired:expired']);
    expect(model.rows[recorded.rowIds[2] as number]?.detail).toBe('expired: nobody decided in time');
    // Asked at 10:40 with a 15-minute timeout; the log goes on to 11:00 and nobody touched it again.
    const lapsed = byId(model, run.ids.lapsing);
    expect(lapsed).toMatchObject({ status: 'expired', lapsed: true, expiresAt: APPROVAL_START + 55 * MIN });
    expect(chain(model, lapsed)).toEqual(['requested:pending', 'call:refuse:APPROVAL_REQUIRED']);
  });

  it('judges expiry as of the report: made after the wire request lapsed, nothing is pending any more', async () => {
    const later = await buildAuditReport([run.path], key().publicKeys(), { generatedAt: APPROVAL_START + 3 * 60 * MIN });
    expect(later.model.summary.totals.approvals).toMatchObject({ pending: 0, expired: 3, denied: 1, used: 1 });
    expect(byId(later.model, run.ids.quorumPending)).toMatchObject({ status: 'expired', lapsed: true });
  });

  it('counts each session’s requests, pending and denied', () => {
    const by = Object.fromEntries(model.sessions.map((s) => [s.id, s]));
    const [chat, refunds, wires, late] = run.sessions as [string, string, string, string];
    expect(by[chat]).toMatchObject({ approvals: 1, approvalsPending: 0, approvalsDenied: 0 });
    expect(by[refunds]).toMatchObject({ approvals: 1, approvalsPending: 0, approvalsDenied: 1 });
    expect(by[wires]).toMatchObject({ approvals: 1, approvalsPending: 1, approvalsDenied: 0 });
    expect(by[late]).toMatchObject({ approvals: 2, approvalsPending: 0, approvalsDenied: 0 });
  });
});

describe('a call that waited for an approval counts once', () => {
  it('in a real gate run: the APPROVAL_REQUIRED refusal a later permit or APPROVAL_DENIED settles is not a call of its own', () => {
    const evaluations = model.rows.filter((r) => r.kind === 'call');
    expect(evaluations).toHaveLength(11);
    const settled = evaluations.filter((r) => r.settledBy !== undefined);
    // The granted request (then permitted) and the denied one (then refused APPROVAL_DENIED); the
    // expired, lapsing and still-pending requests were never settled by a later call.
    expect(settled.map((r) => r.approval).sort()).toEqual([run.ids.denied, run.ids.granted].sort());
    for (const r of settled) {
      expect(r.code).toBe('APPROVAL_REQUIRED');
      const by = model.rows[r.settledBy as number];
      expect(by).toMatchObject({ kind: 'call', approval: r.approval });
      expect(by?.verdict === 'permit' || by?.code === 'APPROVAL_DENIED').toBe(true);
    }
    expect(model.summary.totals).toMatchObject({ calls: 9, refusals: 5, permits: 4 });
    expect(model.summary.refusalsByCode.find((c) => c.name === 'APPROVAL_REQUIRED')?.count).toBe(3);
    const sessionCalls = model.sessions.reduce((n, s) => n + s.calls, 0);
    const sessionRefusals = model.sessions.reduce((n, s) => n + s.refusals, 0);
    expect([sessionCalls, sessionRefusals]).toEqual([9, 5]);
    // Still its own timeline row, in its approval's chain.
    expect(chain(model, byId(model, run.ids.granted))).toContain('call:refuse:APPROVAL_REQUIRED');
  });

  it('from hand-written records: one call granted then permitted is 1 call, 0 refused; an unsettled ask still counts', () => {
    const header = { prev: 'A'.repeat(43), log: 'l', hash: 'h' };
    let seq = 0;
    const rec = (r: Record<string, unknown>) => ({ ...header, seq: seq++, time: 1_000 + seq, principal: 'p', action: 't.a', ...r });
    const ask = (session: string, approval: string) =>
      rec({ type: 'verdict', verdict: 'refuse', code: 'APPROVAL_REQUIRED', session, approval });
    const records = [
      ask('granted', 'a1'),
      rec({ type: 'approval', approval: 'a1', event: 'granted', status: 'granted', approver: 'u', session: 'granted' }),
      rec({ type: 'verdict', verdict: 'permit', session: 'granted', approval: 'a1' }),
      ask('waiting', 'a2'),
      ask('waiting', 'a2'),
      // A permit of another approval settles nothing here.
      rec({ type: 'verdict', verdict: 'permit', session: 'other', approval: 'a3' }),
    ] as unknown as AuditRecord[];
    const m = buildReportModel([{ source: 'x', records, unverified: [], files: ['x'] }], { generatedAt: 0 });
    expect(m.sessions.map((s) => [s.id, s.calls, s.refusals, s.permits])).toEqual([
      ['granted', 1, 0, 1],
      ['waiting', 2, 2, 0],
      ['other', 1, 0, 1],
    ]);
    expect(m.summary.totals).toMatchObject({ calls: 4, refusals: 2, permits: 2 });
    expect(m.rows.filter((r) => r.kind === 'call')).toHaveLength(5);
    expect(m.rows[0]?.settledBy).toBe(2);
  });
});

describe('outcome records that name no session (logs written before outcomes carried it)', () => {
  it('join the session of their evaluation: no phantom "(no session)" row, tile and table agree', () => {
    const outcomes = model.rows.filter((r) => r.kind === 'outcome');
    expect(outcomes.length).toBe(4);
    // The fixture wrote them without a session, as older proxies did.
    const raw = readFileSync(run.path, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"type":"outcome"'));
    expect(raw.every((l) => !l.includes('"session"'))).toBe(true);
    for (const o of outcomes) {
      expect(o.sessionFrom).toBe('evaluation');
      expect(run.sessions).toContain(o.session);
      expect(o.principal).toBe('support-agent.eu-west-1.prod');
    }
    expect(model.sessions.map((s) => s.id).sort()).toEqual([...run.sessions].sort());
    expect(model.summary.totals.sessions).toBe(model.sessions.length);
    expect(model.summary.totals.unsessioned).toBe(0);
  });

  it('from hand-written records: joined by evaluationId; a call that named no session is counted apart', () => {
    const header = { prev: 'A'.repeat(43), log: 'l', hash: 'h' };
    let seq = 0;
    const rec = (r: Record<string, unknown>) => ({ ...header, seq: seq++, time: 1_000 + seq, ...r });
    const records = [
      rec({ type: 'verdict', evaluationId: 'e1', principal: 'p1', action: 't.a', verdict: 'permit', session: 's1' }),
      rec({ type: 'verdict', evaluationId: 'e2', principal: 'p2', action: 't.b', verdict: 'permit' }),
      rec({ type: 'outcome', evaluationId: 'e1', outcome: 'ok', durationMs: 3 }),
      rec({ type: 'outcome', evaluationId: 'e2', outcome: 'tool_error', durationMs: 3 }),
      rec({ type: 'outcome', evaluationId: 'e-unknown', outcome: 'ok', durationMs: 3, session: 's2' }),
      rec({ type: 'verdict', evaluationId: 'e3', principal: 'p1', action: 't.a', verdict: 'refuse', session: 's2' }),
    ] as unknown as AuditRecord[];
    const m = buildReportModel([{ source: 'x', records, unverified: [], files: ['x'] }], { generatedAt: 0 });
    expect(m.rows.filter((r) => r.kind === 'outcome').map((r) => [r.session ?? null, r.sessionFrom ?? null, r.principal ?? null])).toEqual([
      ['s1', 'evaluation', 'p1'],
      [null, null, 'p2'],
      ['s2', null, null],
    ]);
    expect(m.sessions.map((s) => [s.id, s.calls, s.rows])).toEqual([
      ['s1', 1, 2],
      [null, 1, 2],
      ['s2', 1, 2],
    ]);
    // The tile counts named sessions from this same table; the "(no session)" group is counted apart.
    expect(m.summary.totals).toMatchObject({ sessions: 2, unsessioned: 2 });
  });
});

describe('approval requests from hand-written records', () => {
  const header = { prev: 'A'.repeat(43), log: 'l', hash: 'h' };
  const build = (events: Record<string, unknown>[], generatedAt = 0): ReportModel => {
    const records = events.map((e, seq) => ({
      ...header,
      seq,
      time: 10_000 + seq * 1_000,
      type: 'approval',
      policy: 'p',
      principal: 'agent',
      action: 't.x',
      args: 'h',
      session: 's',
      ...e,
    })) as unknown as AuditRecord[];
    return buildReportModel([{ source: 'x', records, unverified: [], files: ['x'] }], { generatedAt });
  };
  const asked = (id: string, expiresAt = 1e12) => ({ approval: id, event: 'requested', status: 'pending', expiresAt });

  it('a decision at or after a break (maybe forged) is listed with its request but changes nothing', () => {
    const records = [asked('a')].map((e, seq) => ({
      ...header,
      seq,
      time: 10_000,
      type: 'approval',
      policy: 'p',
      principal: 'agent',
      action: 't.x',
      args: 'h',
      session: 's',
      ...e,
    })) as unknown as AuditRecord[];
    const forged = {
      index: 1,
      record: {
        ...header,
        seq: 1,
        time: 11_000,
        type: 'approval',
        session: 's',
        approval: 'a',
        event: 'granted',
        status: 'granted',
        approver: 'security-lead',
        expiresAt: 1e12,
      },
    };
    const m = buildReportModel([{ source: 'x', records, unverified: [forged], files: ['x'] }], { generatedAt: 0 });
    const a = byId(m, 'a');
    expect(a.status).toBe('pending');
    expect(a.decisions).toEqual([]);
    expect(a.unverified).toBe(1);
    expect(a.rowIds).toHaveLength(2);
    expect(m.summary.totals.approvals).toMatchObject({ requests: 1, pending: 1 });
  });

  it('a request is pending until a decision comes, however much later', () => {
    expect(build([asked('a')]).summary.totals.approvals).toMatchObject({ requests: 1, pending: 1 });
    const filler = Array.from({ length: 20 }, (_, i) => asked(`other-${i}`));
    const m = build([asked('a'), ...filler, { approval: 'a', event: 'granted', status: 'granted', approver: 'u', expiresAt: 1e12 }]);
    expect(byId(m, 'a').status).toBe('granted');
    expect(m.summary.totals.approvals).toMatchObject({ requests: 21, pending: 20, granted: 1 });
  });

  it('pending and denied are counted once per request, not once per record', () => {
    const m = build([
      asked('a'),
      asked('b'),
      { approval: 'a', event: 'granted', status: 'pending', approver: 'u1' },
      { approval: 'a', event: 'denied', status: 'denied', approver: 'u2', note: 'no' },
      { approval: 'b', event: 'granted', status: 'pending', approver: 'u1' },
    ]);
    expect(m.summary.totals.approvals).toMatchObject({ requests: 2, pending: 1, denied: 1 });
    expect(byId(m, 'a').decisions.map((d) => d.decision)).toEqual(['grant', 'deny']);
  });

  it('expired: by its record; by the clock for a pending request or an unused grant; never a used or denied one', () => {
    const m = build(
      [
        asked('recorded', 5_000),
        { approval: 'recorded', event: 'expired', status: 'expired' },
        asked('waited', 50_000),
        asked('grant-unused', 50_000),
        { approval: 'grant-unused', event: 'granted', status: 'granted', approver: 'u', expiresAt: 60_000 },
        asked('used', 50_000),
        { approval: 'used', event: 'granted', status: 'granted', approver: 'u', expiresAt: 60_000 },
        { approval: 'used', event: 'used', status: 'used' },
        asked('denied', 50_000),
        { approval: 'denied', event: 'denied', status: 'denied', approver: 'u', expiresAt: 50_000 },
        asked('waiting', 500_000),
      ],
      100_000,
    );
    expect(m.approvals.map((a) => [a.id, a.status, a.lapsed])).toEqual([
      ['recorded', 'expired', false],
      ['waited', 'expired', true],
      ['grant-unused', 'expired', true],
      ['used', 'used', false],
      ['denied', 'denied', false],
      ['waiting', 'pending', false],
    ]);
    expect(m.summary.totals.approvals).toEqual({ requests: 6, pending: 1, granted: 0, denied: 1, expired: 3, used: 1 });
    expect(m.rows.find((r) => r.event === 'expired')?.detail).toBe('expired: nobody decided in time');
  });

  it('reads a record whose event or status is recorded text named like Object.prototype members', () => {
    const m = build([
      { approval: 'a', event: '__proto__', status: 'constructor' },
      { approval: 'b', event: 'constructor' },
      { approval: 'c', event: 'denied', status: '__proto__', approver: 'u' },
    ]);
    expect(m.rows.map((r) => [r.event, r.status ?? null])).toEqual([
      ['__proto__', null],
      ['constructor', null],
      ['denied', 'denied'],
    ]);
    expect(m.summary.totals.approvals).toEqual({ requests: 3, pending: 2, granted: 0, denied: 1, expired: 0, used: 0 });
  });

  it('an approval record without a session takes its request’s session', () => {
    const m = build([asked('a'), { approval: 'a', event: 'granted', status: 'granted', approver: 'u', session: undefined }]);
    const granted = m.rows.find((r) => r.event === 'granted');
    expect(granted).toMatchObject({ session: 's', sessionFrom: 'approval' });
    expect(m.sessions.map((s) => [s.id, s.rows, s.approvals])).toEqual([['s', 2, 1]]);
  });
});

describe('kavach audit report on a log with approvals', () => {
  it('prints the sessions and approvals the page shows', async () => {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const html = join(dir, 'approvals.html');
    const code = await cli(['report', run.path, '--keys', run.keysPath, '--out', html]);
    vi.restoreAllMocks();
    expect(code).toBe(0);
    expect(out.split('\n')[0]).toBe(
      `${html}: Verified: every record's hash and link checked; 4 checkpoint signatures verified (key ${key().kid})`,
    );
    // Made now, long after the log: the wire request's two hours have run out too.
    expect(out.split('\n')[1]).toBe(
      '30 records, 9 tool calls (5 refused, 0 invalidated, 0 would block in observe mode), 4 sessions, 5 approval requests (0 pending, 1 denied)',
    );
  });
});
