import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { validateContext, ContextError } from '../engine/context.ts';
import { PolicyError } from '../engine/errors.ts';
import { Gate } from '../engine/gate.ts';
import { explainPolicies } from '../engine/policy/explain.ts';
import { formatRefusal } from '../engine/refusal.ts';
import { parseArgs, stringFlag } from './args.ts';

const USAGE = `usage:
  kavach policy check FILE                          validate a policy file and summarise it
  kavach policy explain FILE --context ctx.json [--json]
                                                    the verdict for one context, and why
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'check') return check(rest);
  if (sub === 'explain') return explain(rest);
  process.stderr.write(USAGE);
  return 2;
}

async function loadGate(file: string): Promise<Gate> {
  if (!['.toml', '.json'].includes(extname(file).toLowerCase())) throw new PolicyError('', 'policy file must end in .toml or .json');
  return Gate.fromFile(file, { drift: false });
}

async function check(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const file = args.positionals[0];
  if (!file) {
    process.stderr.write(USAGE);
    return 2;
  }
  try {
    const gate = await loadGate(file);
    const set = gate.policies;
    const permits = set.policies.filter((p) => p.effect === 'permit').length;
    const limited = set.policies.filter((p) => p.stateful.length > 0).length;
    process.stdout.write(
      `${file}: OK\n  ${set.size} ${set.size === 1 ? 'policy' : 'policies'} (${permits} permit, ${set.size - permits} refuse, ${limited} with rate limits or budgets), combining ${set.combining}\n`,
    );
    if (set.size === 0) process.stdout.write('  note: no policies — every call will be refused (kill switch)\n');
    for (const p of set.policies) {
      process.stdout.write(`  - ${p.effect.padEnd(6)} ${p.name}${set.combining === 'first-match' ? ` (priority ${p.priority})` : ''}: ${p.conditions.map((c) => c.describe).join('; ') || 'always'}\n`);
    }
    await gate.close();
    return 0;
  } catch (err) {
    const message = err instanceof PolicyError ? err.message : (err as Error).message;
    process.stderr.write(`${file}: invalid policy\n  ${message}\n`);
    return 1;
  }
}

async function explain(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['json']);
  const file = args.positionals[0];
  const ctxFile = stringFlag(args, 'context');
  if (!file || !ctxFile) {
    process.stderr.write(USAGE);
    return 2;
  }
  let gate: Gate;
  let rawCtx: unknown;
  try {
    gate = await loadGate(file);
    rawCtx = JSON.parse(await readFile(ctxFile, 'utf8'));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  const verdict = await gate.evaluate(rawCtx as never);
  let traces: ReturnType<typeof explainPolicies> = [];
  try {
    traces = explainPolicies(gate.policies, validateContext(rawCtx), Date.now());
  } catch (err) {
    if (!(err instanceof ContextError)) throw err;
  }
  await gate.close();
  if (args.flags.has('json')) {
    process.stdout.write(`${JSON.stringify({ verdict, policies: traces }, null, 2)}\n`);
    return verdict.kind === 'permit' ? 0 : 3;
  }
  const headline = verdict.kind === 'permit' ? `PERMIT (policy '${verdict.policy ?? '?'}')` : formatRefusal(verdict);
  process.stdout.write(`verdict: ${headline}\n`);
  for (const t of traces) {
    const state = !t.applies ? 'does not apply to this action' : t.matches ? 'MATCHES' : 'does not match';
    process.stdout.write(`\n${t.effect} '${t.name}'${gate.policies.combining === 'first-match' ? ` (priority ${t.priority})` : ''}: ${state}\n`);
    for (const c of t.conditions) {
      process.stdout.write(`  ${c.holds ? 'ok  ' : 'FAIL'} ${c.condition}: ${c.detail}${c.stateful ? ' [charged on permit]' : ''}\n`);
    }
  }
  return verdict.kind === 'permit' ? 0 : 3;
}
