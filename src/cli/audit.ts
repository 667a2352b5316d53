/**
 * `kavach audit verify FILE... --keys public.json` — exit 0, or 1 naming the bad record
 * `kavach audit show FILE [--session S] [--principal P] [--verdict refuse] [--since T] [--json]`
 * `kavach audit stats FILE [--keys public.json] [--json]`
 * `kavach audit report FILE... --keys public.json --out report.html`
 */
import { readFile } from 'node:fs/promises';
import { PublicKeyDirectory } from '../crypto/key-directory.ts';
import { parseDuration } from '../engine/duration.ts';
import { AuditError } from '../audit/errors.ts';
import type { AuditKeys } from '../audit/keys.ts';
import { formatRecord, formatReport, formatTime, matches, terminalSafe, type RecordFilter } from '../audit/timeline.ts';
import { scanAuditLog, verifyAuditLog, type AuditReport } from '../audit/verify.ts';
import { parseArgs, stringFlag, type ParsedArgs } from './args.ts';

const USAGE = `usage:
  kavach audit verify FILE... --keys public.json [--signer KID[,KID]] [--mode hybrid|pq] [--anchor checkpoint.json] [--partial] [--json]
      checks every record's hash and link and every checkpoint's signature; exit 0, or 1 with the index and reason
      (a log no checkpoint signs at all fails: without a signature anyone could have written all of it)
  kavach audit show FILE [--session S] [--principal P] [--action A] [--verdict permit|refuse|invalidate]
                         [--type T] [--since T] [--until T] [--keys public.json] [--json]
      a timeline of the records (chain checked as it reads); T is an ISO time or a duration ago (15m, 24h, 7d)
  kavach audit stats FILE [--keys public.json] [--json]
      counts by verdict, code, principal, action and session; checkpoints; unsealed records
  kavach audit report FILE... --keys public.json --out report.html [--mode hybrid|pq] [--partial]
      one self-contained HTML page: integrity verdict, per-session timelines, charts, filters;
      exit 0 when every log verified, 1 when one is broken (the report is still written and says where)
FILE is the active log (its rotated segments FILE.000001, ... are read too) or one segment with --partial.
`;

class UsageError extends Error {}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'verify':
        return await verify(parseArgs(rest, ['partial', 'json']));
      case 'show':
        return await show(parseArgs(rest, ['json', 'partial']));
      case 'stats':
        return await stats(parseArgs(rest, ['json', 'partial']));
      case 'report':
        return await report(parseArgs(rest, ['partial']));
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return 0;
      default:
        process.stderr.write(USAGE);
        return 2;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`kavach audit ${sub}: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (err instanceof AuditError) {
      process.stderr.write(`kavach audit ${sub}: ${terminalSafe(err.message)}\n`);
      return 1;
    }
    throw err;
  }
}

async function verify(args: ParsedArgs): Promise<number> {
  const keysPath = stringFlag(args, 'keys');
  if (args.positionals.length === 0) throw new UsageError('name at least one FILE');
  if (keysPath === undefined) throw new UsageError('--keys public.json is required (checkpoint signatures are the point)');
  const keys = loadKeys(keysPath);
  const mode = modeFlag(args);
  const anchorPath = stringFlag(args, 'anchor');
  const anchor = anchorPath !== undefined ? await readFile(anchorPath, 'utf8') : undefined;
  const json = args.flags.has('json');
  const signers = stringFlag(args, 'signer')?.split(',').map((k) => k.trim()).filter((k) => k.length > 0);
  let failed = 0;
  const results: unknown[] = [];
  for (const file of args.positionals) {
    try {
      const report = await verifyAuditLog(file, keys, {
        requireCheckpoint: true,
        ...(mode ? { mode } : {}), ...(anchor !== undefined ? { anchor } : {}), ...(args.flags.has('partial') ? { partial: true } : {}),
        ...(signers ? { signers } : {}),
      });
      if (json) results.push({ file, ok: true, report });
      else process.stdout.write(`${terminalSafe(`${file}: ok — ${summary(report)}`)}\n`);
    } catch (err) {
      if (!(err instanceof AuditError)) throw err;
      failed++;
      if (json) results.push({ file, ok: false, index: err.index, code: err.code, reason: err.reason, at: err.file, line: err.line });
      else process.stdout.write(`${terminalSafe(`${file}: FAILED at record ${err.index} [${err.code}] ${err.reason}${err.file !== undefined ? ` (${err.file}${err.line !== undefined ? ` line ${err.line}` : ''})` : ''}`)}\n`);
    }
  }
  if (json) process.stdout.write(`${terminalJson(results, 2)}\n`);
  return failed > 0 ? 1 : 0;
}

function summary(r: AuditReport): string {
  const verdicts = ['permit', 'refuse', 'invalidate'].map((v) => `${v} ${r.byVerdict[v] ?? 0}`).join(', ');
  const sealed = r.lastCheckpoint ? `last checkpoint at seq ${r.lastCheckpoint.seq} (${formatTime(r.lastCheckpoint.time)})` : 'no checkpoint yet';
  const parts = [
    `${r.records} records (${verdicts})`,
    `${r.checkpoints} checkpoint${r.checkpoints === 1 ? '' : 's'} (${r.mode ?? '—'}), ${sealed}`,
    `${r.unsealed} unsealed`,
  ];
  if (r.files.length > 1) parts.push(`${r.files.length} segments`);
  parts.push(r.anchored ? 'seal matches' : 'no seal file or --anchor: a cut back to an earlier checkpoint would not show');
  if (r.resealed > 0) parts.push(`WARNING ${r.resealed} record${r.resealed === 1 ? ' was' : 's were'} found unsealed when a writer reopened the log (a crash, or added while no writer held it) and sealed only then`);
  if (r.recoveries > 0) parts.push(`${r.recoveries} crash recover${r.recoveries === 1 ? 'y' : 'ies'}`);
  if (r.tornTail) parts.push(`WARNING torn tail of ${r.tornTail.bytes} bytes (crash; cut on next open)`);
  return parts.join('; ');
}

async function show(args: ParsedArgs): Promise<number> {
  const file = oneFile(args);
  const filter = filterOf(args);
  const json = args.flags.has('json');
  const style = { color: !json && process.stdout.isTTY === true && process.env.NO_COLOR === undefined };
  const keysPath = stringFlag(args, 'keys');
  let shown = 0;
  let out: string[] = [];
  const drain = (): void => {
    if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
    out = [];
  };
  try {
    const report = await scanAuditLog(file, {
      keys: keysPath !== undefined ? loadKeys(keysPath) : null,
      ...(args.flags.has('partial') ? { partial: true } : {}),
      onRecord: (r) => {
        if (!matches(r, filter)) return;
        shown++;
        out.push(json ? terminalJson(r) : formatRecord(r, style));
        if (out.length >= 512) drain();
      },
    });
    drain();
    if (!json) {
      const checked = report.signaturesChecked ? 'chain and signatures verified' : 'chain intact; signatures not checked (pass --keys)';
      process.stdout.write(`-- ${shown} of ${report.records} records shown; ${checked}; ${report.unsealed} unsealed\n`);
    }
    return 0;
  } catch (err) {
    drain();
    throw err;
  }
}

async function stats(args: ParsedArgs): Promise<number> {
  const file = oneFile(args);
  const keysPath = stringFlag(args, 'keys');
  const report = await scanAuditLog(file, {
    keys: keysPath !== undefined ? loadKeys(keysPath) : null,
    ...(args.flags.has('partial') ? { partial: true } : {}),
  });
  process.stdout.write(args.flags.has('json') ? `${terminalJson(report, 2)}\n` : formatReport(report));
  return 0;
}

async function report(args: ParsedArgs): Promise<number> {
  const keysPath = stringFlag(args, 'keys');
  const out = stringFlag(args, 'out');
  if (args.positionals.length === 0) throw new UsageError('name at least one FILE');
  if (keysPath === undefined) throw new UsageError('--keys public.json is required (the report states whether checkpoint signatures verify)');
  if (out === undefined) throw new UsageError('--out report.html is required');
  const mode = modeFlag(args);
  const { writeAuditReport } = await import('../audit/report/index.ts');
  const model = await writeAuditReport(args.positionals, loadKeys(keysPath), out, {
    ...(mode ? { mode } : {}), ...(args.flags.has('partial') ? { partial: true } : {}),
  });
  const t = model.summary.totals;
  process.stdout.write(`${terminalSafe(`${out}: ${model.integrity.status === 'broken' ? 'INTEGRITY BROKEN' : 'verified'} — ${model.integrity.headline}`)}\n`);
  process.stdout.write(`${t.records} records, ${t.calls} tool calls (${t.refusals} refused, ${t.invalidations} invalidated, ${t.wouldBlock} would block in observe mode), ${model.sessions.length} sessions\n`);
  return model.integrity.status === 'broken' ? 1 : 0;
}

/**
 * JSON for stdout, which may be a terminal: JSON.stringify escapes C0 controls but leaves C1
 * controls (U+009B is CSI to a terminal that reads UTF-8), bidi overrides and line separators raw.
 * Written as \u escapes they are the same JSON value, and recorded text cannot rewrite the screen.
 */
function terminalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function oneFile(args: ParsedArgs): string {
  if (args.positionals.length !== 1) throw new UsageError('name exactly one FILE');
  return args.positionals[0] as string;
}

function loadKeys(path: string): AuditKeys {
  try {
    return PublicKeyDirectory.fromFile(path);
  } catch (err) {
    throw new UsageError(`--keys ${path}: ${(err as Error).message}`);
  }
}

function modeFlag(args: ParsedArgs): 'hybrid' | 'pq' | undefined {
  const mode = stringFlag(args, 'mode');
  if (mode !== undefined && mode !== 'hybrid' && mode !== 'pq') throw new UsageError('--mode is hybrid or pq');
  return mode;
}

function filterOf(args: ParsedArgs): RecordFilter {
  const f: RecordFilter = {};
  for (const name of ['session', 'principal', 'action', 'type'] as const) {
    const v = stringFlag(args, name);
    if (v !== undefined) f[name] = v;
  }
  const verdict = stringFlag(args, 'verdict');
  if (verdict !== undefined) {
    if (verdict !== 'permit' && verdict !== 'refuse' && verdict !== 'invalidate') throw new UsageError('--verdict is permit, refuse or invalidate');
    f.verdict = verdict;
  }
  const since = stringFlag(args, 'since');
  if (since !== undefined) f.since = timeFlag('since', since);
  const until = stringFlag(args, 'until');
  if (until !== undefined) f.until = timeFlag('until', until);
  return f;
}

/** An ISO date/time, or a duration meaning that long ago. */
function timeFlag(name: string, value: string): number {
  if (/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(value)) return Date.now() - parseDuration(value);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new UsageError(`--${name} ${value}: not an ISO time or a duration like 15m, 24h, 7d`);
  return t;
}
