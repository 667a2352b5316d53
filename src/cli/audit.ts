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
import { dispatch, InputError, ioError, runCommand, UsageError, type CommandSpec, type Invocation, type OptionKind } from './args.ts';
import { terminalJson } from './terminal.ts';

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
Exit 2 for a wrong command line or a file that cannot be read (a missing log is never "ok").
`;

const COMMAND = 'kavach audit';
const KEYS = { keys: 'string', partial: 'boolean', json: 'boolean' } as const;

const VERIFY = {
  command: `${COMMAND} verify`, usage: USAGE,
  options: { ...KEYS, signer: 'string', mode: 'string', anchor: 'string' },
  positionals: { name: 'FILE', min: 1 },
} as const;
const SHOW = {
  command: `${COMMAND} show`, usage: USAGE,
  options: { ...KEYS, session: 'string', principal: 'string', action: 'string', verdict: 'string', type: 'string', since: 'string', until: 'string' },
  positionals: { name: 'FILE', min: 1, max: 1 },
} as const;
const STATS = { command: `${COMMAND} stats`, usage: USAGE, options: KEYS, positionals: { name: 'FILE', min: 1, max: 1 } } as const;
const REPORT = {
  command: `${COMMAND} report`, usage: USAGE,
  options: { keys: 'string', out: 'string', mode: 'string', partial: 'boolean' },
  positionals: { name: 'FILE', min: 1 },
} as const;

type Args<S extends { options: Record<string, OptionKind> }> = Invocation<S['options']>;

export function run(argv: string[]): Promise<number> {
  return dispatch(COMMAND, USAGE, {
    verify: (rest) => audit(VERIFY, rest, verify),
    show: (rest) => audit(SHOW, rest, show),
    stats: (rest) => audit(STATS, rest, stats),
    report: (rest) => audit(REPORT, rest, report),
  }, argv);
}

/**
 * Runs one audit subcommand. A log that fails verification is exit 1 with the reason; a log that
 * is not there (NOT_FOUND) is a file that cannot be read: one line, exit 2, like the others.
 */
async function audit<O extends Record<string, OptionKind>>(spec: CommandSpec<O>, argv: string[], body: (args: Invocation<O>) => Promise<number>): Promise<number> {
  return runCommand(spec, argv, async (args) => {
    try {
      return await body(args);
    } catch (err) {
      if (!(err instanceof AuditError)) throw err;
      if (err.code === 'NOT_FOUND') throw new InputError(err.message);
      process.stderr.write(`${spec.command}: ${terminalSafe(err.message)}\n`);
      return 1;
    }
  });
}

/**
 * Exit 0 when every log verifies, 1 when one fails, 2 when one cannot be read (the others are
 * still verified and reported).
 */
async function verify({ options, positionals }: Args<typeof VERIFY>): Promise<number> {
  const keysPath = options.keys;
  if (keysPath === undefined) throw new UsageError('--keys public.json is required (checkpoint signatures are the point)');
  const keys = loadKeys(keysPath);
  const mode = modeFlag(options.mode);
  const anchorPath = options.anchor;
  const anchor = anchorPath !== undefined ? await readInput('--anchor', anchorPath) : undefined;
  const json = options.json === true;
  const signers = options.signer?.split(',').map((k) => k.trim()).filter((k) => k.length > 0);
  let status = 0;
  const results: unknown[] = [];
  for (const file of positionals) {
    try {
      const report = await verifyAuditLog(file, keys, {
        requireCheckpoint: true,
        ...(mode ? { mode } : {}), ...(anchor !== undefined ? { anchor } : {}), ...(options.partial === true ? { partial: true } : {}),
        ...(signers ? { signers } : {}),
      });
      if (json) results.push({ file, ok: true, report });
      else process.stdout.write(`${terminalSafe(`${file}: ok — ${summary(report)}`)}\n`);
    } catch (err) {
      const unreadable = unreadableLog(err);
      if (unreadable !== undefined) {
        status = 2;
        if (json) results.push({ file, ok: false, code: 'NOT_FOUND', reason: unreadable });
        process.stderr.write(`${terminalSafe(`${VERIFY.command}: ${unreadable}`)}\n`);
        continue;
      }
      if (!(err instanceof AuditError)) throw err;
      status = Math.max(status, 1);
      if (json) results.push({ file, ok: false, index: err.index, code: err.code, reason: err.reason, at: err.file, line: err.line });
      else process.stdout.write(`${terminalSafe(`${file}: FAILED at record ${err.index} [${err.code}] ${err.reason}${err.file !== undefined ? ` (${err.file}${err.line !== undefined ? ` line ${err.line}` : ''})` : ''}`)}\n`);
    }
  }
  if (json) process.stdout.write(`${terminalJson(results, 2)}\n`);
  return status;
}

/** Why a log could not be read at all (not there, a directory, no permission), or undefined. */
function unreadableLog(err: unknown): string | undefined {
  if (err instanceof AuditError) return err.code === 'NOT_FOUND' ? err.message : undefined;
  const io = ioError(err);
  return io?.message;
}

/** A file an option names, read whole; unreadable is one line and exit 2. */
async function readInput(option: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new InputError(`${option} ${path}: cannot read: ${(err as Error).message}`);
  }
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

async function show({ options, positionals }: Args<typeof SHOW>): Promise<number> {
  const file = positionals[0] as string;
  const filter = filterOf(options);
  const json = options.json === true;
  const style = { color: !json && process.stdout.isTTY === true && process.env.NO_COLOR === undefined };
  const keysPath = options.keys;
  let shown = 0;
  let out: string[] = [];
  const drain = (): void => {
    if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
    out = [];
  };
  try {
    const report = await scanAuditLog(file, {
      keys: keysPath !== undefined ? loadKeys(keysPath) : null,
      ...(options.partial === true ? { partial: true } : {}),
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

async function stats({ options, positionals }: Args<typeof STATS>): Promise<number> {
  const file = positionals[0] as string;
  const keysPath = options.keys;
  const report = await scanAuditLog(file, {
    keys: keysPath !== undefined ? loadKeys(keysPath) : null,
    ...(options.partial === true ? { partial: true } : {}),
  });
  process.stdout.write(options.json === true ? `${terminalJson(report, 2)}\n` : formatReport(report));
  return 0;
}

async function report({ options, positionals }: Args<typeof REPORT>): Promise<number> {
  const keysPath = options.keys;
  const out = options.out;
  if (keysPath === undefined) throw new UsageError('--keys public.json is required (the report states whether checkpoint signatures verify)');
  if (out === undefined) throw new UsageError('--out report.html is required');
  const mode = modeFlag(options.mode);
  const { writeAuditReport } = await import('../audit/report/index.ts');
  const model = await writeAuditReport(positionals, loadKeys(keysPath), out, {
    ...(mode ? { mode } : {}), ...(options.partial === true ? { partial: true } : {}),
  });
  const t = model.summary.totals;
  process.stdout.write(`${terminalSafe(`${out}: ${model.integrity.status === 'broken' ? 'INTEGRITY BROKEN' : 'verified'} — ${model.integrity.headline}`)}\n`);
  process.stdout.write(`${t.records} records, ${t.calls} tool calls (${t.refusals} refused, ${t.invalidations} invalidated, ${t.wouldBlock} would block in observe mode), ${model.sessions.length} sessions\n`);
  return model.integrity.status === 'broken' ? 1 : 0;
}

function loadKeys(path: string): AuditKeys {
  try {
    return PublicKeyDirectory.fromFile(path);
  } catch (err) {
    throw new InputError(`--keys ${path}: ${(err as Error).message}`);
  }
}

function modeFlag(mode: string | undefined): 'hybrid' | 'pq' | undefined {
  if (mode !== undefined && mode !== 'hybrid' && mode !== 'pq') throw new UsageError('--mode is hybrid or pq');
  return mode;
}

function filterOf(options: Args<typeof SHOW>['options']): RecordFilter {
  const f: RecordFilter = {};
  for (const name of ['session', 'principal', 'action', 'type'] as const) {
    const v = options[name];
    if (v !== undefined) f[name] = v;
  }
  const verdict = options.verdict;
  if (verdict !== undefined) {
    if (verdict !== 'permit' && verdict !== 'refuse' && verdict !== 'invalidate') throw new UsageError('--verdict is permit, refuse or invalidate');
    f.verdict = verdict;
  }
  if (options.since !== undefined) f.since = timeFlag('since', options.since);
  if (options.until !== undefined) f.until = timeFlag('until', options.until);
  return f;
}

/** An ISO date/time, or a duration meaning that long ago. */
function timeFlag(name: string, value: string): number {
  if (/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(value)) return Date.now() - parseDuration(value);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new UsageError(`--${name} ${value}: not an ISO time or a duration like 15m, 24h, 7d`);
  return t;
}
