import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { validateContext, ContextError } from '../engine/context.ts';
import { PolicyError } from '../engine/errors.ts';
import { Gate, type GateOptions } from '../engine/gate.ts';
import { InMemorySessionStore, type SessionState, type SessionStore } from '../engine/stores.ts';
import { explainPolicies } from '../engine/policy/explain.ts';
import { formatRefusal } from '../engine/refusal.ts';
import { parseArgs, stringFlag } from './args.ts';

const USAGE = `usage:
  kavach policy check FILE...                       validate policy files and summarise them
  kavach policy explain FILE --context ctx.json [--json]
                                                    the verdict for one context, and why
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'check') return check(rest);
  if (sub === 'explain') return explain(rest);
  process.stderr.write(USAGE);
  return sub === '--help' || sub === '-h' || sub === 'help' ? 0 : 2;
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
const UNPRINTABLE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const printable = (text: string): string => text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const say = (stream: NodeJS.WriteStream, text: string): void => void stream.write(printable(text));

/** A user mistake in one line, never a stack: a PolicyError names its path, a read error its file. */
const problem = (err: unknown): string => (err instanceof Error ? err.message : String(err));
/** `FILE: invalid policy` for a file that loads wrong, `FILE: cannot read` for one that does not load at all. */
const loadFailure = (file: string, err: unknown): string =>
  `${file}: ${err instanceof PolicyError ? 'invalid policy' : 'cannot read'}\n  ${problem(err)}\n`;

/** Checks every file given (`kavach policy check policies/*.toml`); exit 1 if any is bad. */
async function check(argv: string[]): Promise<number> {
  const files = parseArgs(argv).positionals;
  if (files.length === 0) {
    process.stderr.write(USAGE);
    return 2;
  }
  let status = 0;
  for (const file of files) if (!(await checkOne(file))) status = 1;
  return status;
}

async function checkOne(file: string): Promise<boolean> {
  let gate: Gate;
  try {
    gate = await loadGate(file);
  } catch (err) {
    say(process.stderr, loadFailure(file, err));
    return false;
  }
  const set = gate.policies;
  const permits = set.policies.filter((p) => p.effect === 'permit').length;
  const limited = set.policies.filter((p) => p.stateful.length > 0).length;
  say(
    process.stdout,
    `${file}: OK\n  ${set.size} ${set.size === 1 ? 'policy' : 'policies'} (${permits} permit, ${set.size - permits} refuse, ${limited} with rate limits or budgets), combining ${set.combining}\n`,
  );
  if (set.size === 0) process.stdout.write('  note: no policies — every call will be refused (kill switch)\n');
  for (const p of set.policies) {
    say(process.stdout, `  - ${p.effect.padEnd(6)} ${p.name}${set.combining === 'first-match' ? ` (priority ${p.priority})` : ''}: ${p.conditions.map((c) => c.describe).join('; ') || 'always'}\n`);
  }
  await gate.close();
  return true;
}

async function explain(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['json']);
  const file = args.positionals[0];
  const ctxFile = stringFlag(args, 'context');
  if (!file || !ctxFile) {
    process.stderr.write(USAGE);
    return 2;
  }
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
    say(process.stderr, loadFailure(file, err));
    return 1;
  }
  try {
    rawCtx = JSON.parse((await readFile(ctxFile, 'utf8')).replace(/^\uFEFF/, '')); // a BOM, as the policy loader allows
  } catch (err) {
    say(process.stderr, `${ctxFile}: cannot read the context\n  ${problem(err)}\n`);
    await gate.close();
    return 1;
  }
  const verdict = await gate.evaluate(rawCtx as never);
  let traces: ReturnType<typeof explainPolicies> = [];
  try {
    traces = explainPolicies(gate.policies, validateContext(rawCtx), now, seen);
  } catch (err) {
    if (!(err instanceof ContextError)) throw err;
  }
  await gate.close();
  if (args.flags.has('json')) {
    process.stdout.write(`${JSON.stringify({ verdict, policies: traces }, null, 2)}\n`);
    return verdict.kind === 'permit' ? 0 : 3;
  }
  const headline = verdict.kind === 'permit' ? `PERMIT (policy '${verdict.policy ?? '?'}')` : formatRefusal(verdict);
  say(process.stdout, `verdict: ${headline}\n`);
  for (const t of traces) {
    const state = !t.applies ? 'does not apply to this action' : t.matches ? 'MATCHES' : 'does not match';
    say(process.stdout, `\n${t.effect} '${t.name}'${gate.policies.combining === 'first-match' ? ` (priority ${t.priority})` : ''}: ${state}\n`);
    for (const c of t.conditions) {
      say(process.stdout, `  ${c.holds ? 'ok  ' : 'FAIL'} ${c.condition}: ${c.detail}${c.stateful ? ' [charged on permit]' : ''}\n`);
    }
  }
  return verdict.kind === 'permit' ? 0 : 3;
}
