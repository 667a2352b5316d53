/**
 * A real gate run for the audit report tests: an enforcing gate (signed permits, strict drift) and
 * an observe-mode gate writing to one hybrid-signed audit log, with a drift invalidation, an
 * operator invalidation, a good and a failed policy reload, and agent-controlled markup in the
 * principal, action, reason and params.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/index.ts';
import type { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { Gate } from '../../src/engine/gate.ts';

export const XSS_SCRIPT = '<script>alert(1)</script>';
export const XSS_IMG = '<img src=x onerror=alert(1)>';
/** Tries to end the JSON data block and open a comment. */
export const XSS_BREAKOUT = '</script><!--<script>alert(2)</script>';

export const START = Date.parse('2026-03-14T09:00:00Z');

const POLICY = {
  policies: [
    { name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read_*' }] },
    { name: 'no-rm', effect: 'refuse', conditions: [{ action: 'fs.rm' }] },
  ],
};
const POLICY_WITH_FETCH = { policies: [...POLICY.policies, { name: 'fetch', effect: 'permit', conditions: [{ action: 'net.fetch' }] }] };

export interface GateRun {
  path: string;
  keysPath: string;
}

/** Writes the log at dir/name and the public keys at dir/public.json. */
export async function writeGateRun(dir: string, keyPair: KeyPair, name = 'gate-run.jsonl'): Promise<GateRun> {
  const path = join(dir, name);
  const keysPath = join(dir, 'public.json');
  writeFileSync(keysPath, JSON.stringify(keyPair.publicKeys()));
  let now = START;
  const clock = (): number => now;
  const tick = (ms = 61_000): void => void (now += ms);
  const log = await AuditLog.open(path, {
    keyPair,
    mode: 'hybrid',
    recordArgs: true,
    checkpointEvery: { entries: 6, ms: 3_600_000 },
    clock,
  });
  const gate = Gate.fromDict(POLICY, {
    audit: log,
    signer: PermitSigner.fromKeyPair(keyPair, { mode: 'hybrid' }),
    drift: { ipGeo: 'strict' },
    clock,
  });
  const observe = Gate.fromDict(POLICY, { audit: log, observeOnly: true, drift: false, clock });
  const call = async (
    g: Gate,
    principalId: string,
    sessionId: string,
    actionName: string,
    extra: Record<string, unknown> = {},
  ): Promise<void> => {
    tick();
    await g.evaluate({ principalId, principalKind: 'agent', actionName, sessionId, params: { path: '/srv/data/report.csv' }, ...extra });
  };

  // research-bot: reads, one refused rm, one unmatched fetch
  await call(gate, 'research-bot', 's-alpha', 'fs.read_file');
  await call(gate, 'research-bot', 's-alpha', 'fs.read_dir');
  await call(gate, 'research-bot', 's-alpha', 'fs.rm', { params: { path: '/srv/data', recursive: true } });
  await call(gate, 'research-bot', 's-alpha', 'net.fetch', { params: { url: 'https://example.test/exfil' } });
  await call(gate, 'research-bot', 's-alpha', 'fs.read_file');
  // billing-bot: its session's IP changes (strict drift: invalidated), then the session is dead
  await call(gate, 'billing-bot', 's-beta', 'fs.read_file', { ip: '192.0.2.1' });
  await call(gate, 'billing-bot', 's-beta', 'fs.read_file', { ip: '192.0.2.1' });
  await call(gate, 'billing-bot', 's-beta', 'fs.read_file', { ip: '198.51.100.9' });
  await call(gate, 'billing-bot', 's-beta', 'fs.read_file', { ip: '198.51.100.9' });
  // agent-controlled markup everywhere it can go
  await call(gate, XSS_SCRIPT, 'xss-1', XSS_IMG, { params: { note: XSS_SCRIPT, html: XSS_IMG, breakout: XSS_BREAKOUT } });
  await call(gate, XSS_SCRIPT, 'xss-1', 'fs.read_file', { params: { path: XSS_IMG } });
  // policy reloads: one that adds net.fetch, one that fails
  tick();
  gate.reload(POLICY_WITH_FETCH);
  tick();
  try {
    gate.reload({ policies: [{ name: 'broken', effect: 'maybe', conditions: [] }] });
  } catch {
    // expected: the failed reload is recorded and the previous set stays
  }
  await call(gate, 'research-bot', 's-alpha', 'net.fetch', { params: { url: 'https://example.test/ok' } });
  tick();
  await gate.invalidate({ type: 'principal', principalId: 'billing-bot' }, `offboarded after incident ${XSS_BREAKOUT}`);
  // observe mode: everything is let through, the log says what enforcement would have done
  await call(observe, 'tuning-bot', 's-obs', 'fs.read_file');
  await call(observe, 'tuning-bot', 's-obs', 'fs.rm');
  await call(observe, 'tuning-bot', 's-obs', 'net.fetch');
  await call(observe, 'tuning-bot', 's-obs', 'fs.rm');
  await gate.close();
  await observe.close();
  await log.close();
  return { path, keysPath };
}

/** Written by a human approver: markup and a right-to-left override that would reorder the text. */
export const NOTE_SCRIPT = '<script>alert("note")</script> payee looks wrong';
export const NOTE_BIDI = 'ok by me \u202Egnp.exe\u202C (ticket 4471)';

export const APPROVAL_START = Date.parse('2026-03-14T10:00:00Z');
/** When the approval run's last record is written: a report made then still sees one request pending. */
export const APPROVAL_END = APPROVAL_START + 60 * 60_000;

const APPROVAL_POLICY = {
  policies: [
    { name: 'reads', effect: 'permit', conditions: [{ action: 'crm.read_*' }] },
    { name: 'small_refunds', effect: 'permit', conditions: [{ action: 'refunds.issue' }] },
    {
      name: 'big_refunds_need_a_human',
      description: 'refunds of 500 or more',
      effect: 'approve',
      conditions: [{ action: 'refunds.issue' }, { param_min: { field: 'amount', min: 500 } }],
      approval: { approvers: ['role:finance'], timeout: '15m', grant_ttl: '5m', uses: 1 },
    },
    {
      name: 'wires_need_two_treasurers',
      description: 'outgoing wires',
      effect: 'approve',
      conditions: [{ action: 'payments.wire' }],
      approval: { approvers: ['role:treasury'], quorum: 2, timeout: '2h' },
    },
    { name: 'no-deletes', effect: 'refuse', conditions: [{ action: 'crm.delete_*' }] },
  ],
};

export interface ApprovalRun extends GateRun {
  /** Approval ids by what happened to them. */
  ids: { granted: string; denied: string; quorumPending: string; expired: string; lapsing: string };
  /** Sessions that the run's outcome records (written without a session, as older proxies did) belong to. */
  sessions: string[];
}

/**
 * A support deployment with human approval: a refund granted and used, one denied (its note
 * carries markup and a bidi override), a wire waiting on the second of two treasurers, a request
 * that expired and was recorded expired, one that lapses unrecorded, and outcome records that name
 * no session (as the proxy wrote them before they carried it). Principal and session names are
 * long, the way real deployments name them.
 */
export async function writeApprovalRun(dir: string, keyPair: KeyPair, name = 'approval-run.jsonl'): Promise<ApprovalRun> {
  const path = join(dir, name);
  const keysPath = join(dir, 'public.json');
  writeFileSync(keysPath, JSON.stringify(keyPair.publicKeys()));
  let now = APPROVAL_START;
  const clock = (): number => now;
  const log = await AuditLog.open(path, {
    keyPair,
    mode: 'hybrid',
    recordArgs: true,
    checkpointEvery: { entries: 8, ms: 3_600_000 },
    clock,
  });
  const gate = Gate.fromDict(APPROVAL_POLICY, {
    audit: log,
    signer: PermitSigner.fromKeyPair(keyPair, { mode: 'hybrid' }),
    drift: false,
    clock,
  });
  const SUPPORT = 'support-agent.eu-west-1.prod';
  const TREASURY = 'treasury-reconciler_nightly-batch';
  const s = {
    chat: 'chat_2026-03-14T10:00Z_a7f3c9e1',
    refunds: 'refund-queue/2026-03-14/batch-0042',
    wires: 'wires.nightly.2026-03-14',
    late: 'chat_2026-03-14T10:20Z_0b6d21aa',
  };
  const finance = (id: string) => ({ id, kind: 'user' as const, roles: ['finance'] });
  const treasurer = (id: string) => ({ id, kind: 'user' as const, roles: ['treasury'] });
  const at = (minutes: number): void => void (now = APPROVAL_START + minutes * 60_000);
  const call = async (principalId: string, sessionId: string, actionName: string, params: Record<string, unknown>) => {
    const v = await gate.evaluate({ principalId, principalKind: 'agent', actionName, sessionId, params });
    // The tool ran: an outcome record without a session, as the proxy wrote them before #16.
    if (v.kind === 'permit')
      await log.append({ type: 'outcome', evaluationId: v.evaluationId, outcome: 'ok', durationMs: 40, action: actionName });
    return v;
  };
  const idOf = (v: Awaited<ReturnType<typeof call>>): string => (v.kind === 'refuse' ? (v.approval?.id ?? '') : '');

  at(1);
  await call(SUPPORT, s.chat, 'crm.read_customer', { customer: 'C-1088' });
  at(2);
  await call(SUPPORT, s.chat, 'refunds.issue', { customer: 'C-1088', amount: 120 });
  at(3);
  const granted = idOf(await call(SUPPORT, s.chat, 'refunds.issue', { customer: 'C-1088', amount: 750 }));
  at(5);
  await gate.approvals.decide(granted, {
    approver: finance('alice@finance'),
    decision: 'grant',
    note: 'customer verified by phone; order #4471',
  });
  at(6);
  await call(SUPPORT, s.chat, 'refunds.issue', { customer: 'C-1088', amount: 750 });

  at(8);
  const denied = idOf(await call(SUPPORT, s.refunds, 'refunds.issue', { customer: 'C-2231', amount: 2400 }));
  at(9);
  await call(SUPPORT, s.refunds, 'crm.delete_customer', { customer: 'C-2231' });
  at(11);
  await gate.approvals.decide(denied, { approver: finance('bob@finance'), decision: 'deny', note: NOTE_SCRIPT });
  at(12);
  await call(SUPPORT, s.refunds, 'refunds.issue', { customer: 'C-2231', amount: 2400 });

  at(14);
  const quorumPending = idOf(await call(TREASURY, s.wires, 'payments.wire', { payee: 'ACME GmbH', amount: 48_000 }));
  at(20);
  await gate.approvals.decide(quorumPending, { approver: treasurer('carol@treasury'), decision: 'grant', note: NOTE_BIDI });

  at(21);
  const expired = idOf(await call(SUPPORT, s.late, 'refunds.issue', { customer: 'C-3090', amount: 980 }));
  at(40);
  // Nobody decided in 15 minutes: the same call finds its request expired (recorded) and asks again.
  const lapsing = idOf(await call(SUPPORT, s.late, 'refunds.issue', { customer: 'C-3090', amount: 980 }));
  at(60);
  await call(SUPPORT, s.late, 'crm.read_customer', { customer: 'C-3090' });
  await gate.close();
  await log.close();
  return { path, keysPath, ids: { granted, denied, quorumPending, expired, lapsing }, sessions: [s.chat, s.refunds, s.wires, s.late] };
}
