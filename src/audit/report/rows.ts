import type { UnverifiedLine } from './load.ts';
import { approvalDetail, approvalStateAfter } from './approvals.ts';
import type { ReportRow, Trust } from './model.ts';
import { num, str } from './values.ts';

/** Audit records as the report's timeline rows: read leniently, so an unknown shape still gets a row. */

const VERDICTS = new Set(['permit', 'refuse', 'invalidate']);
const HEADER = new Set(['seq', 'prev', 'log', 'time', 'hash', 'type']);

/** A record (verified, or read leniently) as a timeline row. Unknown shapes still get a row. */
export function rowOf(r: Record<string, unknown>, id: number, log: number, index: number, trust: Trust): ReportRow {
  const type = str(r.type) ?? '(no type)';
  const row: ReportRow = { id, log, index, seq: num(r.seq), time: num(r.time), type, kind: 'log', trust, extra: {} };
  const used = new Set<string>(HEADER);
  const take = (k: string): unknown => {
    used.add(k);
    return r[k];
  };
  switch (type) {
    case 'verdict': {
      row.kind = 'call';
      const verdict = str(take('verdict'));
      if (verdict !== undefined && VERDICTS.has(verdict)) row.verdict = verdict as ReportRow['verdict'];
      setStr(row, 'principal', take('principal'));
      setStr(row, 'tool', take('action'));
      setStr(row, 'session', take('session'));
      setStr(row, 'code', take('code'));
      setStr(row, 'reason', take('reason'));
      setStr(row, 'evaluator', take('evaluator'));
      setStr(row, 'policy', take('policy'));
      if (take('observed') === true) {
        row.observed = true;
        if (row.verdict !== 'permit') row.wouldBlock = true;
      }
      if (row.evaluator === 'drift' || row.code === 'DRIFT_DETECTED') row.drift = true;
      setStr(row, 'approval', take('approval'));
      break;
    }
    case 'outcome': {
      row.kind = 'outcome';
      setStr(row, 'tool', take('action'));
      setStr(row, 'session', take('session'));
      const outcome = str(take('outcome')) ?? '?';
      row.outcome = outcome;
      const ms = num(take('durationMs'));
      const error = str(take('error'));
      row.detail = `${outcome}${ms !== null ? ` in ${ms} ms` : ''}${error !== undefined ? `: ${error}` : ''}`;
      break;
    }
    case 'approval': {
      row.kind = 'approval';
      setStr(row, 'approval', take('approval'));
      setStr(row, 'principal', take('principal'));
      setStr(row, 'tool', take('action'));
      setStr(row, 'session', take('session'));
      setStr(row, 'policy', take('policy'));
      setStr(row, 'approver', take('approver'));
      setStr(row, 'note', take('note'));
      const event = str(take('event')) ?? '?';
      row.event = event;
      const status = str(take('status'));
      const state = approvalStateAfter(status, event);
      if (state !== undefined) row.status = state;
      row.detail = approvalDetail(row, num(r.expiresAt));
      break;
    }
    case 'policy_reload': {
      row.kind = 'reload';
      const ok = take('ok') === true;
      const n = num(take('policies'));
      const error = str(take('error'));
      if (!ok) row.failed = true;
      row.detail = ok
        ? `policy set replaced: ${n ?? '?'} policies`
        : `reload FAILED, ${n ?? '?'} policies stay in force${error !== undefined ? `: ${error}` : ''}`;
      break;
    }
    case 'invalidation': {
      row.kind = 'invalidation';
      const scope = take('scope') as Record<string, unknown> | undefined;
      const reason = str(take('reason')) ?? '';
      const remote = take('remote') === true;
      let what = 'every session';
      if (scope && scope.type === 'session' && typeof scope.sessionId === 'string') {
        row.session = scope.sessionId;
        what = `session ${scope.sessionId}`;
      } else if (scope && scope.type === 'principal' && typeof scope.principalId === 'string') {
        row.principal = scope.principalId;
        what = `principal ${scope.principalId}`;
      }
      row.reason = reason;
      row.verdict = 'invalidate';
      if (/\bdrift\b/i.test(reason)) row.drift = true;
      row.detail = `invalidated ${what}${remote ? ' (from another replica)' : ''}`;
      break;
    }
    case 'checkpoint': {
      row.kind = 'checkpoint';
      const size = num(take('size'));
      const kid = str(take('kid'));
      const mode = str(take('mode'));
      take('sig');
      take('head');
      row.detail = `signed checkpoint: seals records 0..${size !== null ? size - 1 : '?'} (${mode ?? '?'}, key ${kid ?? '?'})`;
      break;
    }
    case 'genesis':
      row.detail = `log created (${str(take('mode')) ?? '?'}, key ${str(take('kid')) ?? '?'})`;
      break;
    case 'segment':
      row.detail = `segment ${num(take('segment')) ?? '?'} begins`;
      break;
    case 'recovery':
      row.detail = `a crash left a torn tail: ${num(take('cutBytes')) ?? '?'} bytes cut from ${str(take('file')) ?? '?'}`;
      break;
    case 'resume': {
      const from = num(take('from'));
      const n = num(take('unsealed'));
      row.detail = `writer reopened the log and found ${n ?? '?'} unsealed record${n === 1 ? '' : 's'} (from seq ${from ?? '?'}): written before a crash, or added while no writer held it; sealed only from here on`;
      break;
    }
    case 'kavach.mcp_screened': {
      // What a screen found in what a server sent of its own accord: where, never the value.
      const findings = take('findings');
      const found = Array.isArray(findings)
        ? [
            ...new Set(
              findings.map(
                (f) => `${str((f as Record<string, unknown>)?.detector) ?? '?'} at ${str((f as Record<string, unknown>)?.path) ?? '?'}`,
              ),
            ),
          ]
        : [];
      const withheld = take('withheld') === true;
      row.detail = `server ${str(take('server')) ?? '?'} sent ${str(take('method')) ?? '?'}: ${found.join(', ') || 'findings'}; ${withheld ? 'withheld' : 'passed on screened'}`;
      break;
    }
    case 'key':
      row.detail = `key ${str(take('event')) ?? '?'}${str(r.kid) !== undefined ? ` ${str(take('kid'))}` : ''}${str(r.detail) !== undefined ? `: ${str(take('detail'))}` : ''}`;
      break;
    default:
      row.detail = `${type} record`;
  }
  for (const [k, v] of Object.entries(r)) if (!used.has(k) && v !== undefined) row.extra[k] = v;
  return row;
}

export function unverifiedRow(u: UnverifiedLine, id: number, log: number): ReportRow {
  if (u.record) return rowOf(u.record, id, log, u.index, 'unverified');
  return {
    id,
    log,
    index: u.index,
    seq: null,
    time: null,
    type: '(unreadable)',
    kind: 'log',
    trust: 'unverified',
    detail: 'a line that is not a JSON record',
    extra: { line: u.raw ?? '' },
  };
}

type StrField = 'principal' | 'tool' | 'session' | 'code' | 'reason' | 'evaluator' | 'policy' | 'approval' | 'approver' | 'note';
function setStr(row: ReportRow, key: StrField, v: unknown): void {
  if (typeof v === 'string') row[key] = v;
}
