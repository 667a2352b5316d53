import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { validateContext, ContextError } from '../engine/context.ts';
import { PolicyError } from '../engine/errors.ts';
import { Gate, type GateOptions } from '../engine/gate.ts';
import { InMemorySessionStore, type SessionState, type SessionStore } from '../engine/stores.ts';
import { explainPolicies } from '../engine/policy/explain.ts';
import { globReadingWarnings } from '../engine/policy/glob-readings.ts';
import { parsePolicyText } from '../engine/policy/load.ts';
import { formatRefusal } from '../engine/refusal.ts';
import { formatDuration } from '../engine/duration.ts';
import type { ApprovalRule } from '../engine/policy/approval-table.ts';
import { dispatch, ioError, runCommand, UsageError } from './args.ts';
import { visibleLines } from '../engine/terminal-text.ts';

const USAGE = `usage:
  kavach policy check FILE...                       validate policy files and summarise them
  kavach policy explain FILE --context ctx.json [--json]
                                                    the verdict for one context, and why
exit 0 when every file loads (check) or the call is permitted (explain); 1 for an invalid policy
or context; 2 for a usage error or a file that cannot be read; explain exits 3 for a refusal
`;

const CHECK = {
  command: 'kavach policy check',
  usage: USAGE,
  options: {},
  positionals: { name: 'FILE', min: 1 },
} as const;

const EXPLAIN = {
  command: 'kavach policy explain',
  usage: USAGE,
  options: { context: 'string', json: 'boolean' },
  positionals: { name: 'FILE', min: 1, max: 1 },
} as const;

export function run(argv: string[]): Promise<number> {
  return dispatch('kavach policy', USAGE, { check, explain }, argv);
}

async function loadGate(file: string, opts: GateOptions = {}): Promise<Gate> {
  if (!['.toml', '.json'].includes(extname(file).toLowerCase())) throw new PolicyError('', 'policy file must end in .toml or .json');
  return Gate.fromFile(file, { drift: false, ...opts });
}

/**
 * Text from a policy file, shown on a terminal: control characters (`\r`, escape sequences) and
 * bidi overrides are printed as `\u` escapes, so a name or pattern cannot overwrite or hide the
 * lines a reviewer reads. Line breaks stay (TOML parse errors quote the lines around the fault).
 */
const say = (stream: NodeJS.WriteStream, text: string): void => void stream.write(visibleLines(text));

/** A user mistake in one line, never a stack: a PolicyError names its path, a read error its file. */
const problem = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Why a policy file did not load, for stderr, and the exit code: 1 for a file that loads wrong
 * (`FILE: invalid policy` and the path of the bad field), 2 for one that cannot be read at all
 * (`FILE: cannot read: ENOENT...`, one line).
 */
function loadFailure(command: string, file: string, err: unknown): { text: string; code: 1 | 2 } {
  const io = ioError(err);
  if (io !== undefined) return { text: `${command}: ${file}: cannot read: ${io.message}\n`, code: 2 };
  return { text: `${file}: ${err instanceof PolicyError ? 'invalid policy' : 'cannot load'}\n  ${problem(err)}\n`, code: 1 };
}

/**
 * Checks every file given (`kavach policy check policies/*.toml`): exit 1 if any is invalid, 2 if
 * any cannot be read.
 */
function check(argv: string[]): Promise<number> {
  return runCommand(CHECK, argv, async ({ positionals }) => {
    let status = 0;
    for (const file of positionals) status = Math.max(status, await checkOne(file));
    return status;
  });
}

async function checkOne(file: string): Promise<number> {
  let gate: Gate;
  try {
    gate = await loadGate(file);
  } catch (err) {
    const failure = loadFailure(CHECK.command, file, err);
    say(process.stderr, failure.text);
    return failure.code;
  }
  const set = gate.policies;
  const permits = set.policies.filter((p) => p.effect === 'permit').length;
  const approves = set.policies.filter((p) => p.effect === 'approve').length;
  const limited = set.policies.filter((p) => p.stateful.length > 0).length;
  say(
    process.stdout,
    `${file}: OK\n  ${set.size} ${set.size === 1 ? 'policy' : 'policies'} (${permits} permit, ${approves > 0 ? `${approves} approve, ` : ''}${set.size - permits - approves} refuse, ${limited} with rate limits or budgets), combining ${set.combining}\n`,
  );
  if (set.size === 0) process.stdout.write('  note: no policies — every call will be refused (kill switch)\n');
  for (const p of set.policies) {
    say(
      process.stdout,
      `  - ${p.effect.padEnd(approves > 0 ? 7 : 6)} ${p.name}${set.combining === 'first-match' ? ` (priority ${p.priority})` : ''}: ${p.conditions.map((c) => c.describe).join('; ') || 'always'}\n`,
    );
    if (p.approval) say(process.stdout, `    ${describeApproval(p.approval)}\n`);
  }
  await gate.close();
  // The file loaded, so it parses again; the spec (not the compiled set) still holds the patterns.
  const text = await readFile(file, 'utf8');
  for (const w of globReadingWarnings(parsePolicyText(text, extname(file).toLowerCase() === '.json' ? 'json' : 'toml'))) {
    say(process.stdout, `  warning: ${w}\n`);
  }
  return 0;
}

/** An approve policy's table, as `policy check` and `policy explain` print it. */
function describeApproval(a: ApprovalRule): string {
  const who = a.approvers.length > 0 ? a.approvers.join(', ') : 'anyone but the caller';
  return `approval: ${who}; quorum ${a.quorum}; waits ${formatDuration(a.timeoutMs)}; a grant lasts ${formatDuration(a.grantTtlMs)} for ${a.uses} use${a.uses === 1 ? '' : 's'}`;
}

function explain(argv: string[]): Promise<number> {
  return runCommand(EXPLAIN, argv, async ({ options, positionals }) => {
    if (options.context === undefined) throw new UsageError('--context ctx.json is required');
    return explainOne(positionals[0] as string, options.context, options.json === true);
  });
}

async function explainOne(file: string, ctxFile: string, json: boolean): Promise<number> {
  // One instant for the verdict and the traces, and the session state the evaluation saw, so
  // that the traces explain the verdict (session_age_max, time_window) instead of contradicting it.
  const now = Date.now();
  const sessions = new InMemorySessionStore();
  let seen: SessionState | undefined;
  const recorder: SessionStore = {
    observe: async (obs) => {
      const result = await sessions.observe(obs);
      if (!result.invalid) seen = result.session;
      return result;
    },
    invalidate: (scope, reason, at) => sessions.invalidate(scope, reason, at),
  };
  let gate: Gate;
  let rawCtx: unknown;
  try {
    gate = await loadGate(file, { clock: () => now, stores: { session: recorder } });
  } catch (err) {
    const failure = loadFailure(EXPLAIN.command, file, err);
    say(process.stderr, failure.text);
    return failure.code;
  }
  try {
    rawCtx = JSON.parse((await readFile(ctxFile, 'utf8')).replace(/^\uFEFF/, '')); // a BOM, as the policy loader allows
  } catch (err) {
    const io = ioError(err);
    say(
      process.stderr,
      io !== undefined
        ? `${EXPLAIN.command}: ${ctxFile}: cannot read the context: ${io.message}\n`
        : `${ctxFile}: the context is not JSON\n  ${problem(err)}\n`,
    );
    await gate.close();
    return io !== undefined ? 2 : 1;
  }
  const verdict = await gate.evaluate(rawCtx as never);
  let traces: ReturnType<typeof explainPolicies> = [];
  try {
    traces = explainPolicies(gate.policies, validateContext(rawCtx), now, seen);
  } catch (err) {
    if (!(err instanceof ContextError)) throw err;
  }
  await gate.close();
  if (json) {
    process.stdout.write(`${JSON.stringify({ verdict, policies: traces }, null, 2)}\n`);
    return verdict.kind === 'permit' ? 0 : 3;
  }
  const headline = verdict.kind === 'permit' ? `PERMIT (policy '${verdict.policy ?? '?'}')` : formatRefusal(verdict);
  say(process.stdout, `verdict: ${headline}\n`);
  if (verdict.kind === 'refuse' && verdict.code === 'APPROVAL_REQUIRED') {
    say(
      process.stdout,
      'note: explain asks nobody (its request id is throwaway); a running gate would make the request and wait for a person\n',
    );
  }
  const approvalOf = new Map(gate.policies.policies.flatMap((p) => (p.approval ? [[p.name, p.approval] as const] : [])));
  for (const t of traces) {
    const state = !t.applies ? 'does not apply to this action' : t.matches ? 'MATCHES' : 'does not match';
    say(
      process.stdout,
      `\n${t.effect} '${t.name}'${gate.policies.combining === 'first-match' ? ` (priority ${t.priority})` : ''}: ${state}\n`,
    );
    const approval = approvalOf.get(t.name);
    if (approval) say(process.stdout, `  ${describeApproval(approval)}\n`);
    for (const c of t.conditions) {
      say(process.stdout, `  ${c.holds ? 'ok  ' : 'FAIL'} ${c.condition}: ${c.detail}${c.stateful ? ' [charged on permit]' : ''}\n`);
    }
  }
  return verdict.kind === 'permit' ? 0 : 3;
}
