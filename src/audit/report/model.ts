import type { AuditRecord, CheckpointMode } from '../record.ts';
import {
  approvalsOf,
  asOf,
  joinByEvaluation,
  markSettledRefusals,
  type ApprovalState,
  type ApprovalSummary,
  type ApprovalTotals,
} from './approvals.ts';
import type { IntegrityBreak, LoadedLog } from './load.ts';
import { rowOf, unverifiedRow } from './rows.ts';
import { onAxis } from './values.ts';

export type { ApprovalState, ApprovalSummary, ApprovalTotals } from './approvals.ts';

/**
 * The data an audit report is drawn from: computed here (and unit-tested), embedded in the HTML as
 * JSON, and turned into DOM nodes by the page's script. Nothing in it is markup.
 */

/** sealed: covered by a verified checkpoint signature; unsealed: chained after the last one; unverified: at or after a break. */
export type Trust = 'sealed' | 'unsealed' | 'unverified';

/** What a timeline row is about. */
export type RowKind = 'call' | 'outcome' | 'approval' | 'reload' | 'invalidation' | 'checkpoint' | 'log';

export interface ReportRow {
  /** Position in the report's row list (stable id). */
  id: number;
  /** Index of the log (in `integrity.logs`) the record comes from. */
  log: number;
  /** Chain index in its log. */
  index: number;
  seq: number | null;
  time: number | null;
  type: string;
  kind: RowKind;
  session?: string;
  principal?: string;
  tool?: string;
  verdict?: 'permit' | 'refuse' | 'invalidate';
  code?: string;
  reason?: string;
  evaluator?: string;
  policy?: string;
  /** Observe mode: the caller was permitted; `verdict` is what enforcement would have said. */
  observed?: boolean;
  /** Observe mode and enforcement would have refused or invalidated. */
  wouldBlock?: boolean;
  /** A drift detection (refusal, invalidation, or invalidation record caused by drift). */
  drift?: boolean;
  /** Outcome rows: ok, tool_error, upstream_failure. */
  outcome?: string;
  /** A failed policy reload. */
  failed?: boolean;
  /** The approval request an approval row is about, or the one a call was refused for or permitted by. */
  approval?: string;
  /**
   * An APPROVAL_REQUIRED refusal that a later call of the same approval settles (its permit, or its
   * APPROVAL_DENIED refusal): the row id of that call. The two are one tool call asked twice, so the
   * counts take only the later one; the refusal stays a timeline row of its own.
   */
  settledBy?: number;
  /** Approval rows: requested, granted, denied, used, returned, expired. */
  event?: string;
  /** Approval rows: the request's status after the event. */
  status?: ApprovalState;
  /** Approval decisions: who decided, and what they wrote (recorded text, shown as text). */
  approver?: string;
  note?: string;
  /**
   * The record named no session and the report found it: through the verdict record of its
   * evaluation (an outcome written by an older proxy), or through its approval's other records.
   */
  sessionFrom?: 'evaluation' | 'approval';
  trust: Trust;
  /** One line for rows that are not calls (reloads, checkpoints, ...). */
  detail?: string;
  /** Remaining fields, shown when a row is expanded. */
  extra: Record<string, unknown>;
}

export interface LogIntegrity {
  source: string;
  files: string[];
  logId: string | null;
  mode: CheckpointMode | null;
  status: 'verified' | 'broken';
  /** Records that verified. */
  records: number;
  /** Lines at or after the break, shown but not trusted. */
  unverified: number;
  /** Verified checkpoints (signature checked). */
  checkpoints: number;
  kids: string[];
  lastCheckpoint: { seq: number; time: number; kid: string } | null;
  /** Verified records after the last verified checkpoint: chained, not yet signed. */
  unsealed: number;
  /** The seal file (PATH.seal) was found in the log. */
  anchored: boolean;
  tornTailBytes: number;
  recoveries: number;
  firstTime: number | null;
  lastTime: number | null;
  broken: IntegrityBreak | null;
}

export interface IntegrityModel {
  status: 'verified' | 'broken';
  /** Every log has at least one verified checkpoint signature (else it is only hash-chained). */
  signed: boolean;
  /** The one line the banner leads with. */
  headline: string;
  logs: LogIntegrity[];
}

export interface SessionSummary {
  /** null: calls that named no session. */
  id: string | null;
  principals: string[];
  first: number | null;
  last: number | null;
  calls: number;
  permits: number;
  refusals: number;
  invalidations: number;
  wouldBlock: number;
  drift: number;
  tools: number;
  rows: number;
  /** Approval requests made in the session, and of those still waiting or denied (see ApprovalSummary). */
  approvals: number;
  approvalsPending: number;
  approvalsDenied: number;
}

export interface TimeBucket {
  start: number;
  end: number;
  permit: number;
  refuse: number;
  invalidate: number;
  /** Observe mode, enforcement would have refused or invalidated (the caller was permitted). */
  wouldBlock: number;
}

export interface NamedCount {
  name: string;
  count: number;
}

export interface PrincipalSummary {
  name: string;
  calls: number;
  permits: number;
  refusals: number;
  invalidations: number;
  wouldBlock: number;
}

export interface ReportTotals {
  records: number;
  calls: number;
  permits: number;
  refusals: number;
  invalidations: number;
  observed: number;
  wouldBlock: number;
  sessions: number;
  principals: number;
  tools: number;
  reloads: number;
  failedReloads: number;
  invalidationRecords: number;
  drift: number;
  unverified: number;
  outcomes: Record<string, number>;
  /** Approval requests by status (the same folding as `ReportModel.approvals`). */
  approvals: ApprovalTotals;
  /** Rows in the "(no session)" group of `ReportModel.sessions` (calls that named no session). */
  unsessioned: number;
}

export interface ReportSummary {
  totals: ReportTotals;
  bucketMs: number;
  verdictsOverTime: TimeBucket[];
  refusalsByCode: NamedCount[];
  refusalsByTool: NamedCount[];
  topPrincipals: PrincipalSummary[];
  /** Observe mode: what enforcement would have blocked. */
  observe: { observed: number; wouldBlock: number; byCode: NamedCount[]; byTool: NamedCount[]; byPrincipal: NamedCount[] };
  /** Policy reloads and drift events, for marking on time axes. */
  markers: { time: number; kind: 'reload' | 'failed-reload' | 'drift' | 'invalidation'; rowId: number }[];
}

export interface ReportModel {
  format: 'kavach.audit-report.v1';
  generatedAt: number;
  integrity: IntegrityModel;
  rows: ReportRow[];
  sessions: SessionSummary[];
  approvals: ApprovalSummary[];
  summary: ReportSummary;
  facets: { sessions: string[]; principals: string[]; tools: string[] };
}

export interface BuildOptions {
  generatedAt?: number;
  /** Entries in each "top" list (default 12). */
  top?: number;
  /** Most buckets on the time axis (default 48). */
  maxBuckets?: number;
}

export function buildReportModel(logs: readonly LoadedLog[], opts: BuildOptions = {}): ReportModel {
  const rows: ReportRow[] = [];
  const integrity = logs.map((log, l) => {
    const li = logIntegrity(log);
    const sealedBelow = li.lastCheckpoint ? li.lastCheckpoint.seq : -1;
    log.records.forEach((r, i) => {
      // By seq, not position: a partial log (one segment) starts mid-chain.
      const trust: Trust = r.type === 'checkpoint' || r.seq < sealedBelow ? 'sealed' : 'unsealed';
      rows.push(rowOf(r as unknown as Record<string, unknown>, rows.length, l, i, trust));
    });
    for (const u of log.unverified) rows.push(unverifiedRow(u, rows.length, l));
    return li;
  });
  // Several logs (replicas) interleave by time; one log keeps its chain order.
  if (logs.length > 1) {
    rows.sort((a, b) => (a.time ?? 0) - (b.time ?? 0) || a.log - b.log || a.index - b.index);
    rows.forEach((r, i) => {
      r.id = i;
    });
  }
  joinByEvaluation(rows);
  markSettledRefusals(rows);
  const generatedAt = opts.generatedAt ?? Date.now();
  const approvals = approvalsOf(rows, asOf(rows, generatedAt));
  const sessions = sessionsOf(rows, approvals);
  return {
    format: 'kavach.audit-report.v1',
    generatedAt,
    integrity: {
      status: integrity.some((g) => g.status === 'broken') ? 'broken' : 'verified',
      signed: integrity.every((g) => g.checkpoints > 0),
      headline: headline(integrity),
      logs: integrity,
    },
    rows,
    sessions,
    approvals,
    summary: summarize(rows, sessions, approvals, opts),
    facets: {
      sessions: distinct(rows.map((r) => r.session)),
      principals: distinct(rows.map((r) => r.principal)),
      tools: distinct(rows.map((r) => r.tool)),
    },
  };
}

function logIntegrity(log: LoadedLog): LogIntegrity {
  const rep = log.report;
  const checkpoints = log.records.filter((r) => r.type === 'checkpoint');
  const last = checkpoints.at(-1);
  const lastCp = last && last.type === 'checkpoint' ? { seq: last.seq, time: last.time, kid: last.kid } : null;
  const genesis = log.records[0];
  const times = log.records.map((r) => r.time);
  return {
    source: log.source,
    files: log.files,
    logId: rep?.logId ?? genesis?.log ?? null,
    mode: rep?.mode ?? (genesis?.type === 'genesis' ? genesis.mode : null),
    status: log.broken ? 'broken' : 'verified',
    records: log.records.length,
    unverified: log.unverified.length,
    checkpoints: checkpoints.length,
    kids: rep ? rep.kids : distinct(checkpoints.map((c) => (c.type === 'checkpoint' ? c.kid : undefined))),
    lastCheckpoint: lastCp,
    unsealed: lastCp ? log.records.length - (log.records.indexOf(last as AuditRecord) + 1) : log.records.length,
    anchored: rep?.anchored ?? false,
    tornTailBytes: rep?.tornTail?.bytes ?? 0,
    recoveries: log.records.filter((r) => r.type === 'recovery').length,
    firstTime: times.length > 0 ? times.reduce((a, b) => Math.min(a, b)) : null,
    lastTime: times.length > 0 ? times.reduce((a, b) => Math.max(a, b)) : null,
    broken: log.broken ?? null,
  };
}

function headline(logs: readonly LogIntegrity[]): string {
  const broken = logs.filter((g) => g.status === 'broken');
  if (broken.length === 0) {
    const cps = logs.reduce((n, g) => n + g.checkpoints, 0);
    const unsealed = logs.reduce((n, g) => n + g.unsealed, 0);
    const kids = distinct(logs.flatMap((g) => g.kids));
    const unsigned = logs.filter((g) => g.checkpoints === 0);
    if (unsigned.length > 0) {
      return (
        `Chain intact but NOT SIGNED: no checkpoint seals ${logs.length > 1 ? unsigned.map((g) => g.source).join(', ') : 'this log'} yet; ` +
        `its ${unsigned.reduce((n, g) => n + g.unsealed, 0)} records could be rewritten by anyone able to write the file`
      );
    }
    return (
      `Verified: every record's hash and link checked; ${cps} checkpoint signature${cps === 1 ? '' : 's'} verified` +
      `${kids.length > 0 ? ` (key${kids.length === 1 ? '' : 's'} ${kids.join(', ')})` : ''}` +
      `${unsealed > 0 ? `; ${unsealed} record${unsealed === 1 ? '' : 's'} after the last checkpoint not yet sealed` : ''}`
    );
  }
  return broken
    .map((g) => {
      const b = g.broken as IntegrityBreak;
      const where = b.index >= 0 ? `at record ${b.index}` : '';
      return `BROKEN ${where}${logs.length > 1 ? ` in ${g.source}` : ''}: ${b.reason} [${b.code}]`.replace('BROKEN :', 'BROKEN:');
    })
    .join(' · ');
}

function distinct(values: readonly (string | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => v !== undefined))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Whether a row is counted as a tool call: a call asked again after its approval was decided counts once. */
function countedCall(r: ReportRow): boolean {
  return r.kind === 'call' && r.settledBy === undefined;
}

/** Whether a row belongs to a session's group (a log-wide event does not). */
function inSessionGroup(r: ReportRow): boolean {
  return r.kind === 'call' || r.kind === 'outcome' || r.kind === 'approval' || (r.kind === 'invalidation' && r.session !== undefined);
}

/** The session table; the "sessions" total is counted from it too, so the tile and the table agree. */
function sessionsOf(rows: readonly ReportRow[], approvals: readonly ApprovalSummary[]): SessionSummary[] {
  const by = new Map<string | null, SessionSummary & { toolSet: Set<string>; principalSet: Set<string> }>();
  const open = (key: string | null): SessionSummary & { toolSet: Set<string>; principalSet: Set<string> } => {
    let s = by.get(key);
    if (!s) {
      s = {
        id: key,
        principals: [],
        first: null,
        last: null,
        calls: 0,
        permits: 0,
        refusals: 0,
        invalidations: 0,
        wouldBlock: 0,
        drift: 0,
        tools: 0,
        rows: 0,
        approvals: 0,
        approvalsPending: 0,
        approvalsDenied: 0,
        toolSet: new Set(),
        principalSet: new Set(),
      };
      by.set(key, s);
    }
    return s;
  };
  for (const r of rows) {
    if (!inSessionGroup(r)) continue;
    const s = open(r.session ?? null);
    s.rows++;
    if (r.time !== null) {
      s.first = s.first === null ? r.time : Math.min(s.first, r.time);
      s.last = s.last === null ? r.time : Math.max(s.last, r.time);
    }
    if (r.principal !== undefined) s.principalSet.add(r.principal);
    if (r.drift) s.drift++;
    if (r.kind === 'invalidation') {
      s.invalidations++;
      continue;
    }
    if (!countedCall(r)) continue;
    s.calls++;
    if (r.tool !== undefined) s.toolSet.add(r.tool);
    if (r.observed) {
      s.permits++;
      if (r.wouldBlock) s.wouldBlock++;
    } else if (r.verdict === 'permit') s.permits++;
    else if (r.verdict === 'refuse') s.refusals++;
    else if (r.verdict === 'invalidate') s.invalidations++;
  }
  for (const a of approvals) {
    const s = by.get(a.session ?? null);
    if (!s) continue;
    s.approvals++;
    if (a.status === 'pending') s.approvalsPending++;
    if (a.status === 'denied') s.approvalsDenied++;
  }
  return [...by.values()]
    .map(({ toolSet, principalSet, ...s }) => ({ ...s, tools: toolSet.size, principals: [...principalSet].sort() }))
    .sort((a, b) => (a.first ?? 0) - (b.first ?? 0) || ((a.id ?? '') < (b.id ?? '') ? -1 : 1));
}

/** A bucket width that gives at most `max` buckets over the span, from a readable set. */
export function bucketWidth(spanMs: number, max: number): number {
  const steps = [1e3, 5e3, 15e3, 6e4, 3e5, 9e5, 36e5, 3 * 36e5, 6 * 36e5, 12 * 36e5, 864e5, 7 * 864e5, 30 * 864e5, 365 * 864e5];
  for (const s of steps) if (spanMs / s < max) return s;
  return Math.ceil(spanMs / max / 864e5) * 864e5;
}

function summarize(
  rows: readonly ReportRow[],
  sessions: readonly SessionSummary[],
  approvals: readonly ApprovalSummary[],
  opts: BuildOptions,
): ReportSummary {
  const top = opts.top ?? 12;
  const calls = rows.filter(countedCall);
  const totals: ReportTotals = {
    records: rows.length,
    calls: calls.length,
    permits: 0,
    refusals: 0,
    invalidations: 0,
    observed: 0,
    wouldBlock: 0,
    sessions: 0,
    principals: 0,
    tools: 0,
    reloads: 0,
    failedReloads: 0,
    invalidationRecords: 0,
    drift: 0,
    unverified: rows.filter((r) => r.trust === 'unverified').length,
    outcomes: {},
    approvals: { requests: approvals.length, pending: 0, granted: 0, denied: 0, expired: 0, used: 0 },
    unsessioned: 0,
  };
  for (const a of approvals) totals.approvals[a.status]++;
  const refusalsByCode = new Map<string, number>();
  const refusalsByTool = new Map<string, number>();
  const observeByCode = new Map<string, number>();
  const observeByTool = new Map<string, number>();
  const observeByPrincipal = new Map<string, number>();
  const principals = new Map<string, PrincipalSummary>();
  const inc = (m: Map<string, number>, k: string | undefined): void => void m.set(k ?? '(none)', (m.get(k ?? '(none)') ?? 0) + 1);
  for (const r of calls) {
    const p = r.principal ?? '(none)';
    let ps = principals.get(p);
    if (!ps) principals.set(p, (ps = { name: p, calls: 0, permits: 0, refusals: 0, invalidations: 0, wouldBlock: 0 }));
    ps.calls++;
    if (r.observed) {
      totals.observed++;
      totals.permits++;
      ps.permits++;
      if (r.wouldBlock) {
        totals.wouldBlock++;
        ps.wouldBlock++;
        inc(observeByCode, r.code);
        inc(observeByTool, r.tool);
        inc(observeByPrincipal, r.principal);
      }
    } else if (r.verdict === 'permit') {
      totals.permits++;
      ps.permits++;
    } else if (r.verdict === 'refuse' || r.verdict === 'invalidate') {
      if (r.verdict === 'refuse') {
        totals.refusals++;
        ps.refusals++;
      } else {
        totals.invalidations++;
        ps.invalidations++;
      }
      inc(refusalsByCode, r.code);
      inc(refusalsByTool, r.tool);
    }
  }
  const markers: ReportSummary['markers'] = [];
  // A Map, not an object: an unverified row's outcome may be "constructor" or "__proto__".
  const outcomes = new Map<string, number>();
  for (const r of rows) {
    if (r.drift) totals.drift++;
    if (r.kind === 'reload') {
      totals.reloads++;
      if (r.failed) totals.failedReloads++;
    }
    if (r.kind === 'invalidation') totals.invalidationRecords++;
    if (r.kind === 'outcome') inc(outcomes, r.outcome ?? '?');
    if (r.time === null) continue;
    if (r.kind === 'reload') markers.push({ time: r.time, kind: r.failed ? 'failed-reload' : 'reload', rowId: r.id });
    else if (r.drift) markers.push({ time: r.time, kind: 'drift', rowId: r.id });
    else if (r.kind === 'invalidation') markers.push({ time: r.time, kind: 'invalidation', rowId: r.id });
  }
  totals.outcomes = Object.fromEntries(outcomes);
  totals.sessions = sessions.filter((s) => s.id !== null).length;
  totals.unsessioned = sessions.find((s) => s.id === null)?.rows ?? 0;
  totals.principals = principals.size;
  totals.tools = new Set(calls.map((r) => r.tool).filter((s) => s !== undefined)).size;

  const { bucketMs, buckets } = overTime(calls, opts.maxBuckets ?? 48);
  return {
    totals,
    bucketMs,
    verdictsOverTime: buckets,
    refusalsByCode: ranked(refusalsByCode, top),
    refusalsByTool: ranked(refusalsByTool, top),
    topPrincipals: [...principals.values()].sort((a, b) => b.calls - a.calls || (a.name < b.name ? -1 : 1)).slice(0, top),
    observe: {
      observed: totals.observed,
      wouldBlock: totals.wouldBlock,
      byCode: ranked(observeByCode, top),
      byTool: ranked(observeByTool, top),
      byPrincipal: ranked(observeByPrincipal, top),
    },
    markers,
  };
}

function overTime(calls: readonly ReportRow[], max: number): { bucketMs: number; buckets: TimeBucket[] } {
  const times = calls
    .map((r) => r.time)
    .filter((t): t is number => t !== null)
    .map(onAxis);
  if (times.length === 0) return { bucketMs: 0, buckets: [] };
  let lo = times[0] as number;
  let hi = lo;
  for (const t of times) {
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  const width = bucketWidth(hi - lo + 1, max);
  const start = Math.floor(lo / width) * width;
  const n = Math.floor((hi - start) / width) + 1;
  const buckets: TimeBucket[] = Array.from({ length: n }, (_, i) => ({
    start: start + i * width,
    end: start + (i + 1) * width,
    permit: 0,
    refuse: 0,
    invalidate: 0,
    wouldBlock: 0,
  }));
  for (const r of calls) {
    if (r.time === null) continue;
    const b = buckets[Math.min(n - 1, Math.floor((onAxis(r.time) - start) / width))] as TimeBucket;
    if (r.wouldBlock) b.wouldBlock++;
    else if (r.observed || r.verdict === 'permit') b.permit++;
    else if (r.verdict === 'refuse') b.refuse++;
    else if (r.verdict === 'invalidate') b.invalidate++;
  }
  return { bucketMs: width, buckets };
}

/** Counts, largest first; past `top`, the rest summed as "others". */
function ranked(m: Map<string, number>, top: number): NamedCount[] {
  const all = [...m.entries()].map(([name, count]) => ({ name, count })).sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : 1));
  if (all.length <= top) return all;
  const rest = all.slice(top - 1).reduce((n, e) => n + e.count, 0);
  return [...all.slice(0, top - 1), { name: `(${all.length - top + 1} others)`, count: rest }];
}
