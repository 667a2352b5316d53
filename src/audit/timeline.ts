import type { AuditRecord } from './record.ts';
import type { AuditReport, Counts } from './verify.ts';

/** Which records `kavach audit show` prints. */
export interface RecordFilter {
  session?: string;
  principal?: string;
  action?: string;
  verdict?: 'permit' | 'refuse' | 'invalidate';
  type?: string;
  /** ms since epoch, inclusive. */
  since?: number;
  until?: number;
}

/** True when the record passes every filter given. Call filters keep only the records about calls. */
export function matches(r: AuditRecord, f: RecordFilter): boolean {
  if (f.since !== undefined && r.time < f.since) return false;
  if (f.until !== undefined && r.time > f.until) return false;
  if (f.type !== undefined && r.type !== f.type) return false;
  if (f.verdict !== undefined && (r.type !== 'verdict' || r.verdict !== f.verdict)) return false;
  if (f.principal !== undefined) {
    const p =
      r.type === 'verdict' || r.type === 'approval'
        ? r.principal
        : r.type === 'invalidation' && scopeOf(r).type === 'principal'
          ? scopeOf(r).principalId
          : undefined;
    if (p !== f.principal) return false;
  }
  if (f.session !== undefined) {
    const s =
      r.type === 'verdict' || r.type === 'approval'
        ? r.session
        : r.type === 'invalidation' && scopeOf(r).type === 'session'
          ? scopeOf(r).sessionId
          : undefined;
    if (s !== f.session) return false;
  }
  if (f.action !== undefined && ((r.type !== 'verdict' && r.type !== 'approval') || r.action !== f.action)) return false;
  return true;
}

/**
 * An invalidation record's scope, read defensively: the chain checks hashes, not shapes, so an
 * unsealed line (or one from another writer) may carry any scope, or none.
 */
function scopeOf(r: AuditRecord): { type?: unknown; principalId?: unknown; sessionId?: unknown } {
  const s = (r as { scope?: unknown }).scope;
  return s !== null && typeof s === 'object' ? s : {};
}

export interface Style {
  color: boolean;
}

const PAINT = { red: 31, green: 32, yellow: 33, magenta: 35, cyan: 36, dim: 2, bold: 1 } as const;
export function paint(style: Style, tone: keyof typeof PAINT, text: string): string {
  return style.color ? `\u001b[${PAINT[tone]}m${text}\u001b[0m` : text;
}

/**
 * Recorded text as it may reach a terminal: agents, upstream servers and anyone who edited the file
 * choose these strings. Control characters (ESC sequences that erase or rewrite lines, CR, newlines
 * that forge a timeline line, C1 controls), bidi overrides and line separators are shown as \\u
 * escapes, never interpreted.
 */
export function terminalSafe(text: unknown): string {
  return String(text).replace(
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function formatTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString().replace('T', ' ').replace('Z', '');
}

/** One record as one readable line of a terminal timeline. */
export function formatRecord(record: AuditRecord, style: Style = { color: false }): string {
  const r = safeRecord(record);
  const head = `${paint(style, 'dim', formatTime(r.time))}  ${paint(style, 'dim', `#${r.seq}`.padStart(7))}  `;
  const tag = (tone: keyof typeof PAINT, word: string) => paint(style, tone, word.padEnd(11));
  switch (r.type) {
    case 'verdict': {
      const tone = r.verdict === 'permit' ? 'green' : r.verdict === 'refuse' ? 'red' : 'magenta';
      const who = `${r.principal}${r.kind ? ` (${r.kind})` : ''}`;
      const parts = [`${tag(tone, r.verdict.toUpperCase())}${who}  ${paint(style, 'bold', r.action ?? '(no action)')}`];
      if (r.code !== undefined) parts.push(paint(style, tone, `[${r.code}]`));
      if (r.reason !== undefined) parts.push(r.reason);
      const meta: string[] = [];
      if (r.observed) meta.push('observed: the caller was permitted');
      if (r.policy !== undefined) meta.push(`policy=${r.policy}`);
      if (r.session !== undefined) meta.push(`session=${r.session}`);
      if (r.permit !== undefined) meta.push(`permit=${r.permit}`);
      if (r.approval !== undefined) meta.push(`approval=${r.approval}`);
      if (r.argsValue !== undefined) meta.push(`args=${JSON.stringify(r.argsValue)}`);
      if (r.argsError !== undefined) meta.push(r.argsError);
      return head + parts.join('  ') + (meta.length > 0 ? `  ${paint(style, 'dim', meta.join(' '))}` : '');
    }
    case 'checkpoint':
      return `${head}${tag('cyan', 'CHECKPOINT')}seals records 0..${r.size - 1} (${r.mode}, key ${r.kid})`;
    case 'genesis':
      return `${head}${tag('cyan', 'LOG START')}log ${r.log} (${r.mode}, key ${r.kid})`;
    case 'segment':
      return `${head}${tag('cyan', 'SEGMENT')}segment ${r.segment} begins`;
    case 'recovery':
      return `${head}${tag('yellow', 'RECOVERED')}cut a torn tail of ${r.cutBytes} bytes from ${r.file} after a crash`;
    case 'resume':
      return `${head}${tag('yellow', 'RESUMED')}${r.unsealed} record${r.unsealed === 1 ? '' : 's'} (seq ${r.from}..${r.from + r.unsealed - 1}) were unsealed when this writer opened the log: a crash, or lines added while no writer held it`;
    case 'policy_reload':
      return `${head}${tag(r.ok ? 'cyan' : 'red', 'RELOAD')}${r.ok ? `policy set replaced: ${r.policies} policies` : `reload failed, ${r.policies} policies stay: ${r.error ?? ''}`}`;
    case 'invalidation': {
      const s = scopeOf(r);
      const what =
        s.type === 'session'
          ? `session ${String(s.sessionId)}`
          : s.type === 'principal'
            ? `principal ${String(s.principalId)}`
            : s.type === 'global'
              ? 'every session'
              : `scope ${JSON.stringify((r as { scope?: unknown }).scope) ?? '(none)'}`;
      return `${head}${tag('magenta', 'INVALIDATE')}${what}: ${r.reason}${r.remote ? ' (from another replica)' : ''}`;
    }
    case 'outcome':
      return `${head}${tag(r.outcome === 'ok' ? 'green' : 'yellow', 'OUTCOME')}${r.outcome} in ${r.durationMs} ms${r.action ? `  ${r.action}` : ''}  ${paint(style, 'dim', `eval=${r.evaluationId}`)}${r.error ? `  ${r.error}` : ''}`;
    case 'approval': {
      const tone =
        r.event === 'granted' || r.event === 'used' ? 'green' : r.event === 'denied' ? 'red' : r.event === 'expired' ? 'magenta' : 'yellow';
      const who = `${r.principal}${r.kind ? ` (${r.kind})` : ''}`;
      const parts = [`${tag(tone, `APPROVAL`)}${r.event} ${who}  ${paint(style, 'bold', r.action)}`];
      if (r.approver !== undefined)
        parts.push(
          `by ${r.approver}${r.approverKind ? ` (${r.approverKind})` : ''}${r.approverRoles?.length ? ` [${r.approverRoles.join(', ')}]` : ''}`,
        );
      if (r.note !== undefined) parts.push(`note: ${r.note}`);
      const meta = [`approval=${r.approval}`, `status=${r.status}`, `policy=${r.policy}`];
      if (r.session !== undefined) meta.push(`session=${r.session}`);
      if (r.expiresAt !== undefined) meta.push(`until=${formatTime(r.expiresAt)}`);
      return head + parts.join('  ') + `  ${paint(style, 'dim', meta.join(' '))}`;
    }
    case 'key':
      return `${head}${tag('cyan', 'KEY')}${r.event}${r.kid ? ` ${r.kid}` : ''}${r.detail ? `: ${r.detail}` : ''}`;
    default: {
      const { seq: _s, prev: _p, log: _l, time: _t, hash: _h, type, ...rest } = r as Record<string, unknown>;
      return `${head}${tag('cyan', String(type).toUpperCase().slice(0, 10))}${JSON.stringify(rest)}`;
    }
  }
}

/** A copy with every string (and key) terminal-safe, however deep. */
function safeRecord(r: AuditRecord): AuditRecord {
  return deepSafe(r) as AuditRecord;
}

function deepSafe(v: unknown): unknown {
  if (typeof v === 'string') return terminalSafe(v);
  if (Array.isArray(v)) return v.map(deepSafe);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [terminalSafe(k), deepSafe(x)]));
  }
  return v;
}

function top(counts: Counts, n: number): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = entries
    .slice(0, n)
    .map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`)
    .join(' · ');
  return entries.length > n ? `${shown} · … (${entries.length} distinct)` : shown || '—';
}

/** Records after the last checkpoint, said so nobody takes them for signed ones. */
export function unsealedText(n: number): string {
  if (n === 0) return 'nothing unsealed';
  return `${n} record${n === 1 ? '' : 's'} UNSEALED (after the last checkpoint: hash-chained only, anyone able to write the file could have added ${n === 1 ? 'it' : 'them'})`;
}

/** `kavach audit stats`: the report as a short summary. */
export function formatReport(r: AuditReport): string {
  const lines = [
    `log          ${r.logId} (${r.mode ?? 'no checkpoints'}), ${r.files.length} file${r.files.length === 1 ? '' : 's'}`,
    `records      ${r.records.toLocaleString('en-US')} (seq ${r.firstSeq}..${r.lastSeq})${r.firstTime !== undefined ? `, ${formatTime(r.firstTime)} → ${formatTime(r.lastTime as number)}` : ''}`,
    `checkpoints  ${r.checkpoints}${r.lastCheckpoint ? `, last at seq ${r.lastCheckpoint.seq} (${formatTime(r.lastCheckpoint.time)})` : ''}; ${unsealedText(r.unsealed)}`,
    `signatures   ${r.signaturesChecked ? `verified (key${r.kids.length === 1 ? '' : 's'} ${r.kids.join(', ') || '—'})` : 'not checked (pass --keys)'}${r.anchored ? '; seal file matches' : ''}`,
    `verdicts     ${top(r.byVerdict, 3)}${r.observed > 0 ? ` (observe mode: ${r.observed})` : ''}`,
    `codes        ${top(r.byCode, 9)}`,
    `principals   ${top(r.byPrincipal, 8)}`,
    `actions      ${top(r.byAction, 8)}`,
    `sessions     ${Object.keys(r.bySession).length.toLocaleString('en-US')} distinct; busiest ${top(r.bySession, 3)}`,
  ];
  if (Object.keys(r.byOutcome).length > 0) lines.push(`outcomes     ${top(r.byOutcome, 3)}`);
  if (Object.keys(r.byApproval ?? {}).length > 0) lines.push(`approvals    ${top(r.byApproval, 6)}`);
  const other = Object.fromEntries(Object.entries(r.byType).filter(([t]) => t !== 'verdict'));
  lines.push(`record types ${top(other, 12)}`);
  if (r.recoveries > 0)
    lines.push(`recoveries   ${r.recoveries} torn tail${r.recoveries === 1 ? '' : 's'} cut after crashes (recorded in the chain)`);
  if (r.resealed > 0)
    lines.push(
      `resealed     ${r.resealed} record${r.resealed === 1 ? '' : 's'} found unsealed when a writer reopened the log (a crash, or added while no writer held it), sealed only afterwards`,
    );
  if (r.tornTail)
    lines.push(`torn tail    ${r.tornTail.bytes} bytes at the end of ${r.tornTail.file} (a crash; cut when the log is next opened)`);
  // Nothing here is painted: every line is made terminal-safe whole (names, ids, files).
  return `${lines.map(terminalSafe).join('\n')}\n`;
}
