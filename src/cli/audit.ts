/**
 * `kavach audit verify FILE... --keys public.json` — exit 0, or 1 naming the bad record
 * `kavach audit show FILE [--session S] [--principal P] [--verdict refuse] [--since T] [--json]`
 * `kavach audit stats FILE [--keys public.json] [--json]`
 * `kavach audit report FILE... --keys public.json --out report.html`
 */
import { PublicKeyDirectory } from '../crypto/key-directory.ts';
import { parseDuration } from '../engine/duration.ts';
import { AuditError } from '../audit/errors.ts';
import type { AuditKeys } from '../audit/keys.ts';
import type { AuditRecord } from '../audit/record.ts';
import {
  formatRecord,
  formatReport,
  formatTime,
  matches,
  paint,
  terminalSafe,
  unsealedText,
  type RecordFilter,
} from '../audit/timeline.ts';
import { scanAuditLog, verifyAuditLog, type AuditReport, type VerifyOptions } from '../audit/verify.ts';
import { dispatch, InputError, ioError, runCommand, UsageError, type CommandSpec, type Invocation, type OptionKind } from './args.ts';
import { anchorInput, type AnchorInput } from './audit-anchor.ts';
import { terminalJson } from '../engine/terminal-text.ts';

const USAGE = `usage:
  kavach audit verify FILE... --keys public.json [--anchor redis://HOST:PORT | --anchor checkpoint.json] [--strict]
                              [--signer KID[,KID]] [--mode hybrid|pq] [--partial] [--json]
      checks every record's hash and link and every checkpoint's signature; exit 0, or 1 with the index and reason
      (a log no checkpoint signs at all fails: without a signature anyone could have written all of it)
      --anchor redis://…  the witness the proxy's [audit] anchor sent checkpoints to: fails a log cut back to an
                          earlier checkpoint, or rewritten and sealed again (a local seal cannot show either)
      --strict            also fails on records no checkpoint seals (unsealed), and on records after the newest
                          checkpoint the anchor holds
  kavach audit show FILE [--session S] [--principal P] [--action A] [--verdict permit|refuse|invalidate]
                         [--type T] [--since T] [--until T] [--keys public.json] [--json]
      a timeline of the records (chain checked as it reads); T is an ISO time or a duration ago (15m, 24h, 7d);
      records after the last checkpoint are marked [UNSEALED] ("sealed": false with --json)
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
  command: `${COMMAND} verify`,
  usage: USAGE,
  options: { ...KEYS, signer: 'string', mode: 'string', anchor: 'string', strict: 'boolean' },
  positionals: { name: 'FILE', min: 1 },
} as const;
const SHOW = {
  command: `${COMMAND} show`,
  usage: USAGE,
  options: {
    ...KEYS,
    session: 'string',
    principal: 'string',
    action: 'string',
    verdict: 'string',
    type: 'string',
    since: 'string',
    until: 'string',
  },
  positionals: { name: 'FILE', min: 1, max: 1 },
} as const;
const STATS = { command: `${COMMAND} stats`, usage: USAGE, options: KEYS, positionals: { name: 'FILE', min: 1, max: 1 } } as const;
const REPORT = {
  command: `${COMMAND} report`,
  usage: USAGE,
  options: { keys: 'string', out: 'string', mode: 'string', partial: 'boolean' },
  positionals: { name: 'FILE', min: 1 },
} as const;

type Args<S extends { options: Record<string, OptionKind> }> = Invocation<S['options']>;

export function run(argv: string[]): Promise<number> {
  return dispatch(
    COMMAND,
    USAGE,
    {
      verify: (rest) => audit(VERIFY, rest, verify),
      show: (rest) => audit(SHOW, rest, show),
      stats: (rest) => audit(STATS, rest, stats),
      report: (rest) => audit(REPORT, rest, report),
    },
    argv,
  );
}

/**
 * Runs one audit subcommand. A log that fails verification is exit 1 with the reason; a log that
 * is not there (NOT_FOUND) is a file that cannot be read: one line, exit 2, like the others.
 */
async function audit<O extends Record<string, OptionKind>>(
  spec: CommandSpec<O>,
  argv: string[],
  body: (args: Invocation<O>) => Promise<number>,
): Promise<number> {
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
  const json = options.json === true;
  const signers = options.signer
    ?.split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  const given = options.anchor !== undefined ? await anchorInput(options.anchor) : undefined;
  try {
    return await verifyEach(positionals, keys, json, given, {
      requireCheckpoint: true,
      ...(mode ? { mode } : {}),
      ...(options.partial === true ? { partial: true } : {}),
      ...(signers ? { signers } : {}),
      ...(options.strict === true ? { requireSealed: true } : {}),
      ...(given !== undefined ? { anchor: 'witness' in given ? given.witness : given.checkpoint } : {}),
    });
  } finally {
    if (given !== undefined && 'witness' in given) await given.witness.close();
  }
}

async function verifyEach(
  files: string[],
  keys: AuditKeys,
  json: boolean,
  given: AnchorInput | undefined,
  opts: VerifyOptions,
): Promise<number> {
  let status = 0;
  const results: unknown[] = [];
  for (const file of files) {
    try {
      const report = await verifyAuditLog(file, keys, opts);
      if (json) results.push({ file, ok: true, report });
      else
        process.stdout.write(`${terminalSafe(`${file}: ok — ${summary(report)}`)}\n${terminalSafe(`  ${sealStatement(report, given)}`)}\n`);
    } catch (err) {
      const unreadable = unreadableLog(err);
      if (unreadable !== undefined) {
        status = 2;
        if (json) results.push({ file, ok: false, code: err instanceof AuditError ? err.code : 'NOT_FOUND', reason: unreadable });
        process.stderr.write(`${terminalSafe(`${VERIFY.command}: ${unreadable}`)}\n`);
        continue;
      }
      if (!(err instanceof AuditError)) throw err;
      status = Math.max(status, 1);
      if (json) results.push({ file, ok: false, index: err.index, code: err.code, reason: err.reason, at: err.file, line: err.line });
      else
        process.stdout.write(
          `${terminalSafe(`${file}: FAILED at record ${err.index} [${err.code}] ${err.reason}${err.file !== undefined ? ` (${err.file}${err.line !== undefined ? ` line ${err.line}` : ''})` : ''}`)}\n`,
        );
    }
  }
  if (json) process.stdout.write(`${terminalJson(results, 2)}\n`);
  return status;
}

/**
 * Why a log could not be checked at all (not there, a directory, no permission, the anchor out of
 * reach: never "ok", and not a finding about the log either), or undefined.
 */
function unreadableLog(err: unknown): string | undefined {
  if (err instanceof AuditError) return err.code === 'NOT_FOUND' || err.code === 'ANCHOR_UNAVAILABLE' ? err.message : undefined;
  const io = ioError(err);
  return io?.message;
}

function summary(r: AuditReport): string {
  const verdicts = ['permit', 'refuse', 'invalidate'].map((v) => `${v} ${r.byVerdict[v] ?? 0}`).join(', ');
  const sealed = r.lastCheckpoint
    ? `last checkpoint at seq ${r.lastCheckpoint.seq} (${formatTime(r.lastCheckpoint.time)})`
    : 'no checkpoint yet';
  const parts = [
    `${r.records} records (${verdicts})`,
    `${r.checkpoints} checkpoint${r.checkpoints === 1 ? '' : 's'} (${r.mode ?? '—'}), ${sealed}`,
    unsealedText(r.unsealed),
  ];
  if (r.files.length > 1) parts.push(`${r.files.length} segments`);
  if (r.witness) parts.push(`anchor matches (its newest checkpoint: seq ${r.witness.latest.seq}, ${formatTime(r.witness.latest.time)})`);
  else parts.push(r.anchored ? 'seal matches' : 'no seal file or --anchor');
  if (r.resealed > 0)
    parts.push(
      `WARNING ${r.resealed} record${r.resealed === 1 ? ' was' : 's were'} found unsealed when a writer reopened the log (a crash, or added while no writer held it) and sealed only then`,
    );
  if (r.recoveries > 0) parts.push(`${r.recoveries} crash recover${r.recoveries === 1 ? 'y' : 'ies'}`);
  if (r.tornTail) parts.push(`WARNING torn tail of ${r.tornTail.bytes} bytes (crash; cut on next open)`);
  return parts.join('; ');
}

/** One line on what this verification does and does not prove (DESIGN §14). */
function sealStatement(r: AuditReport, given: AnchorInput | undefined): string {
  if (r.witness) {
    const w = r.witness;
    const after =
      w.unanchored === 0
        ? 'nothing after it'
        : `${w.unanchored} record${w.unanchored === 1 ? '' : 's'} after it ${w.unanchored === 1 ? 'is' : 'are'} sealed at most locally (the host could still cut ${w.unanchored === 1 ? 'it' : 'them'})`;
    return `anchored (${given?.describe ?? 'anchor'}): the log is not cut back and matches the ${w.matched} checkpoint${w.matched === 1 ? '' : 's'} the anchor holds, through seq ${w.latest.seq}; ${after}`;
  }
  return "local seal only: shows the records are unchanged since the key sealed them; it cannot show the log was not cut back to an earlier checkpoint or rewritten and re-sealed by whoever holds the key (the log's host): --anchor redis://… checks that";
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
  const emit = (r: AuditRecord, sealed: boolean): void => {
    shown++;
    if (json) out.push(terminalJson({ ...r, sealed }));
    else out.push(sealed ? formatRecord(r, style) : `${formatRecord(r, style)}  ${paint(style, 'yellow', '[UNSEALED]')}`);
    if (out.length >= 512) drain();
  };
  // Whether a record is sealed is known only at the next checkpoint: the matching records since the
  // last one wait here (at most one checkpoint interval of them), and what is left at the end is not.
  let waiting: AuditRecord[] = [];
  const sealWaiting = (sealed: boolean): void => {
    for (const r of waiting) emit(r, sealed);
    waiting = [];
  };
  try {
    const report = await scanAuditLog(file, {
      keys: keysPath !== undefined ? loadKeys(keysPath) : null,
      ...(options.partial === true ? { partial: true } : {}),
      onRecord: (r) => {
        if (r.type === 'checkpoint') sealWaiting(true);
        if (!matches(r, filter)) return;
        if (r.type === 'checkpoint') emit(r, true);
        else waiting.push(r);
      },
    });
    sealWaiting(false);
    drain();
    if (!json) {
      const checked = report.signaturesChecked ? 'chain and signatures verified' : 'chain intact; signatures not checked (pass --keys)';
      process.stdout.write(`-- ${shown} of ${report.records} records shown; ${checked}; ${terminalSafe(unsealedText(report.unsealed))}\n`);
    }
    return 0;
  } catch (err) {
    sealWaiting(false);
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
  if (keysPath === undefined)
    throw new UsageError('--keys public.json is required (the report states whether checkpoint signatures verify)');
  if (out === undefined) throw new UsageError('--out report.html is required');
  const mode = modeFlag(options.mode);
  const { writeAuditReport } = await import('../audit/report/index.ts');
  const model = await writeAuditReport(positionals, loadKeys(keysPath), out, {
    ...(mode ? { mode } : {}),
    ...(options.partial === true ? { partial: true } : {}),
  });
  const t = model.summary.totals;
  // The headline says the state in its first words (Verified / Chain intact but NOT SIGNED / BROKEN).
  process.stdout.write(`${terminalSafe(`${out}: ${model.integrity.headline}`)}\n`);
  const a = t.approvals;
  process.stdout.write(
    `${t.records} records, ${t.calls} tool calls (${t.refusals} refused, ${t.invalidations} invalidated, ${t.wouldBlock} would block in observe mode), ` +
      `${t.sessions} session${t.sessions === 1 ? '' : 's'}${t.unsessioned > 0 ? ` (and ${t.unsessioned} records naming none)` : ''}` +
      `${a.requests > 0 ? `, ${a.requests} approval request${a.requests === 1 ? '' : 's'} (${a.pending} pending, ${a.denied} denied)` : ''}\n`,
  );
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
    if (verdict !== 'permit' && verdict !== 'refuse' && verdict !== 'invalidate')
      throw new UsageError('--verdict is permit, refuse or invalidate');
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
