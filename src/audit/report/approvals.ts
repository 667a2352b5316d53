import type { ReportRow } from './model.ts';
import { num, onAxis, str } from './values.ts';

/**
 * Approval requests in an audit report (DESIGN §11): each request's life folded from its records,
 * the words of an approval row, and the joins that give records the session they left out.
 */

/** An approval's status (DESIGN §11). */
export type ApprovalState = 'pending' | 'granted' | 'denied' | 'expired' | 'used';

/** One approval request's life, folded from its records in log order. */
export interface ApprovalSummary {
  id: string;
  /**
   * The status after its last record, except that a request still pending (or a grant with uses
   * left) whose time ran out before the end of the report is expired: the gate marks expiry only
   * when the request is next touched, so a lapsed request may have no `expired` record.
   */
  status: ApprovalState;
  /** Expired by the clock, with no record saying so. */
  lapsed: boolean;
  session?: string;
  principal?: string;
  tool?: string;
  policy?: string;
  requestedAt: number | null;
  /** The latest recorded expiry: of the request while it waits, of the grant once granted. */
  expiresAt: number | null;
  decisions: { approver: string; decision: 'grant' | 'deny'; note?: string; time: number | null }[];
  /** Uses of the grant taken (less any given back). */
  uses: number;
  /** Its approval rows and the calls that name it, in report order. */
  rowIds: number[];
  /** Its records at or after an integrity break: listed, counted for nothing. */
  unverified?: number;
}

export interface ApprovalTotals {
  /** Distinct requests seen. */
  requests: number;
  pending: number;
  granted: number;
  denied: number;
  expired: number;
  used: number;
}

const APPROVAL_STATES: ReadonlySet<string> = new Set(['pending', 'granted', 'denied', 'expired', 'used']);
/** A status for a leniently read record whose `status` is missing or unknown (a Map: the event is recorded text). */
const STATE_AFTER: ReadonlyMap<string, ApprovalState> = new Map([
  ['requested', 'pending'],
  ['granted', 'granted'],
  ['denied', 'denied'],
  ['used', 'used'],
  ['returned', 'granted'],
  ['expired', 'expired'],
]);

/** A time as the page shows times: 2026-03-14 10:18:00 UTC. */
function utc(ms: number): string {
  const iso = new Date(onAxis(ms)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** One line for an approval row, in words; the note is a field of its own (shown as text). */
export function approvalDetail(row: ReportRow, expiresAt: number | null): string {
  const by = row.approver !== undefined ? ` by ${row.approver}` : '';
  const until = expiresAt !== null ? ` until ${utc(expiresAt)}` : '';
  switch (row.event) {
    case 'requested':
      return `asked for a human's approval (policy ${row.policy ?? '?'})${until.replace(' until', ', waits until')}`;
    case 'granted':
      return row.status === 'pending'
        ? `granted${by}; still pending: more approvers must grant`
        : `granted${by}${until.replace(' until', ', usable until')}`;
    case 'denied':
      return `denied${by}`;
    case 'used':
      return row.status === 'used' ? 'grant used by the call (its last use)' : 'grant used by the call (uses left)';
    case 'returned':
      return 'a use of the grant given back (the call was refused later)';
    case 'expired':
      return 'expired: nobody decided in time, or the grant went unused';
    default:
      return `approval ${row.event ?? '?'}`;
  }
}

/**
 * Joins records to their evaluation's verdict: an outcome (or an approval record) that names no
 * session takes the session of the verdict with its evaluationId — logs written before outcome
 * records carried the session would otherwise show a phantom "(no session)" group — and an
 * outcome takes the verdict's principal. The approval records of one request share its session.
 */
export function joinByEvaluation(rows: ReportRow[]): void {
  const verdictOf = new Map<string, ReportRow>();
  for (const r of rows) {
    const e = str(r.extra.evaluationId);
    if (r.kind === 'call' && e !== undefined && !verdictOf.has(e)) verdictOf.set(e, r);
  }
  for (const r of rows) {
    if (r.kind !== 'outcome' && r.kind !== 'approval') continue;
    const v = verdictOf.get(str(r.extra.evaluationId) ?? '');
    if (!v) continue;
    if (r.session === undefined && v.session !== undefined) {
      r.session = v.session;
      r.sessionFrom = 'evaluation';
    }
    if (r.principal === undefined && v.principal !== undefined) r.principal = v.principal;
  }
  const sessionOfApproval = new Map<string, string>();
  for (const r of rows) {
    if (r.approval !== undefined && r.session !== undefined && !sessionOfApproval.has(r.approval))
      sessionOfApproval.set(r.approval, r.session);
  }
  for (const r of rows) {
    if (r.kind !== 'approval' || r.session !== undefined || r.approval === undefined) continue;
    const s = sessionOfApproval.get(r.approval);
    if (s !== undefined) {
      r.session = s;
      r.sessionFrom = 'approval';
    }
  }
}

/**
 * Marks each APPROVAL_REQUIRED refusal that a later call of the same approval settles (a permit by
 * its grant, or an APPROVAL_DENIED refusal): the agent asked again once a human decided, and the
 * counts take that one call once.
 */
export function markSettledRefusals(rows: readonly ReportRow[]): void {
  const settler = new Map<string, number>();
  for (let i = rows.length - 1; i >= 0; i--) {
    const r = rows[i] as ReportRow;
    if (r.kind !== 'call' || r.approval === undefined || r.observed) continue;
    if (r.verdict === 'permit' || (r.verdict === 'refuse' && r.code === 'APPROVAL_DENIED')) settler.set(r.approval, r.id);
    else if (r.verdict === 'refuse' && r.code === 'APPROVAL_REQUIRED') {
      const by = settler.get(r.approval);
      if (by !== undefined) r.settledBy = by;
    }
  }
}

/** The report's "now" for expiry: when it was made, or its latest record if that is later (a clock ahead). */
export function asOf(rows: readonly ReportRow[], generatedAt: number): number {
  let t = generatedAt;
  for (const r of rows) if (r.time !== null && r.time > t) t = r.time;
  return t;
}

/** Each approval request's life, from its records in report order. */
export function approvalsOf(rows: readonly ReportRow[], now: number): ApprovalSummary[] {
  const by = new Map<string, ApprovalSummary>();
  const get = (id: string): ApprovalSummary => {
    let a = by.get(id);
    if (!a) {
      a = { id, status: 'pending', lapsed: false, requestedAt: null, expiresAt: null, decisions: [], uses: 0, rowIds: [] };
      by.set(id, a);
    }
    return a;
  };
  for (const r of rows) {
    if (r.kind !== 'approval' || r.approval === undefined) continue;
    const a = get(r.approval);
    // At or after a break a record may be forged ("granted by security-lead"): it is listed with
    // the request, marked UNVERIFIED in its row, but moves neither its status nor its counts.
    if (r.trust === 'unverified') {
      a.rowIds.push(r.id);
      a.unverified = (a.unverified ?? 0) + 1;
      continue;
    }
    // What expired: a request nobody decided, or a grant nobody used (the record says only "expired").
    if (r.event === 'expired' && a.rowIds.length > 0) {
      if (a.status === 'pending') r.detail = 'expired: nobody decided in time';
      else if (a.status === 'granted') r.detail = 'expired: the grant went unused in time';
    }
    a.rowIds.push(r.id);
    a.session ??= r.session;
    a.principal ??= r.principal;
    a.tool ??= r.tool;
    a.policy ??= r.policy;
    if (r.status !== undefined) a.status = r.status;
    const expiresAt = num(r.extra.expiresAt);
    if (expiresAt !== null) a.expiresAt = expiresAt;
    if (r.event === 'requested' && a.requestedAt === null) a.requestedAt = r.time;
    if ((r.event === 'granted' || r.event === 'denied') && r.approver !== undefined) {
      const d: ApprovalSummary['decisions'][number] = {
        approver: r.approver,
        decision: r.event === 'granted' ? 'grant' : 'deny',
        time: r.time,
      };
      if (r.note !== undefined) d.note = r.note;
      a.decisions.push(d);
    }
    if (r.event === 'used') a.uses++;
    if (r.event === 'returned' && a.uses > 0) a.uses--;
  }
  // The calls that name a request: refused while it waits, permitted by its grant. A call alone
  // (its approval records outside this report) does not make a request.
  for (const r of rows) {
    if (r.kind !== 'call' || r.approval === undefined) continue;
    by.get(r.approval)?.rowIds.push(r.id);
  }
  for (const a of by.values()) {
    a.rowIds.sort((x, y) => x - y);
    if ((a.status === 'pending' || a.status === 'granted') && a.expiresAt !== null && a.expiresAt <= now) {
      a.status = 'expired';
      a.lapsed = true;
    }
  }
  return [...by.values()];
}

/** An approval row's status: the recorded one when it is known, else what its event leaves. */
export function approvalStateAfter(status: string | undefined, event: string): ApprovalState | undefined {
  return status !== undefined && APPROVAL_STATES.has(status) ? (status as ApprovalState) : STATE_AFTER.get(event);
}
