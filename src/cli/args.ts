/**
 * One declared spec per `kavach` subcommand, parsed strictly: an option the command does not
 * declare, a value missing, a value given to a switch, an option given twice or a stray argument
 * is a usage error. A lenient parser once let `audit verify LOG --keys K --anchr x` print "ok":
 * the check the user asked for was skipped without a word.
 */
import { ConfigError } from '../engine/errors.ts';
import { visibleLines } from '../engine/terminal-text.ts';

/** `string` takes a value; `boolean` takes none; `optional` takes one when the next word is not a flag. */
export type OptionKind = 'string' | 'boolean' | 'optional';

export interface CommandSpec<O extends Record<string, OptionKind>> {
  /** As typed: `kavach audit verify` (errors and the --help hint name it). */
  command: string;
  usage: string;
  options: O;
  /** The arguments it takes besides options, and what to call them in errors. */
  positionals?: { name: string; min?: number; max?: number };
}

export type OptionValues<O extends Record<string, OptionKind>> = {
  readonly [K in keyof O]?: O[K] extends 'boolean' ? true : O[K] extends 'optional' ? string | true : string;
};

export interface Invocation<O extends Record<string, OptionKind>> {
  options: OptionValues<O>;
  positionals: string[];
}

/** A command line that does not fit the spec: exit 2, one line, a hint to --help. */
export class UsageError extends Error {}

/** A file or value the command cannot use (unreadable, not JSON...): exit 2, one line. */
export class InputError extends Error {}

const isHelp = (arg: string): boolean => arg === '--help' || arg === '-h';

/** True when `--help`/`-h` appears before any `--`: help wins over every other word on the line. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (isHelp(arg)) return true;
  }
  return false;
}

export function parseCommand<O extends Record<string, OptionKind>>(spec: CommandSpec<O>, argv: readonly string[]): Invocation<O> {
  const values = new Map<string, string | true>();
  const positionals: string[] = [];
  const kindOf = (name: string): OptionKind | undefined => (Object.hasOwn(spec.options, name) ? spec.options[name] : undefined);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const kind = kindOf(name);
    if (kind === undefined) throw new UsageError(`unknown option --${name}`);
    if (values.has(name)) throw new UsageError(`option --${name} given twice`);
    const next = argv[i + 1];
    // A following word that is itself a flag is the value gone missing, never the value.
    const nextIsValue = next !== undefined && !next.startsWith('--');
    if (eq > 0) {
      if (kind === 'boolean') throw new UsageError(`option --${name} takes no value`);
      values.set(name, arg.slice(eq + 1));
    } else if (kind === 'boolean') {
      values.set(name, true);
    } else if (nextIsValue) {
      values.set(name, next);
      i++;
    } else if (kind === 'optional') {
      values.set(name, true);
    } else {
      throw new UsageError(`option --${name} needs a value`);
    }
  }
  const want = spec.positionals;
  const max = want?.max ?? (want ? Infinity : 0);
  if (positionals.length > max) throw new UsageError(`unexpected argument "${positionals[max]}"`);
  const min = want?.min ?? 0;
  if (positionals.length < min) {
    throw new UsageError(min === 1 && max === 1 ? `name one ${want?.name}` : `name at least ${min === 1 ? 'one' : min} ${want?.name}`);
  }
  return { options: Object.fromEntries(values) as OptionValues<O>, positionals };
}

/**
 * Parses `argv` by `spec` and runs `body`; `--help` prints the usage to stdout (exit 0). A usage
 * error, a config error or a file that cannot be read is one line on stderr and exit 2; any other
 * error is a defect and propagates (with its stack).
 */
export async function runCommand<O extends Record<string, OptionKind>>(
  spec: CommandSpec<O>,
  argv: readonly string[],
  body: (invocation: Invocation<O>) => Promise<number>,
): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(spec.usage);
    return 0;
  }
  try {
    return await body(parseCommand(spec, argv));
  } catch (err) {
    const line = oneLineProblem(err, spec.command);
    if (line === undefined) throw err;
    process.stderr.write(`${visibleLines(line)}\n`);
    return 2;
  }
}

/** The stderr line for an error a user can fix, or undefined for a defect. */
function oneLineProblem(err: unknown, command: string): string | undefined {
  if (err instanceof UsageError) return `${command}: ${err.message} (see \`${command} --help\`)`;
  if (err instanceof InputError) return `${command}: ${err.message}`;
  if (err instanceof ConfigError) return `${command}: config error: ${err.message}`;
  const io = ioError(err);
  // A wrapper's message names what was being read (`--keys K: cannot read K: ENOENT...`).
  if (io !== undefined) return `${command}: ${(err as Error).message.split('\n')[0]}`;
  return undefined;
}

/** The file-system error `err` is, or was caused by (ENOENT, EACCES, EISDIR...). */
export function ioError(err: unknown): NodeJS.ErrnoException | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code) && typeof (e as NodeJS.ErrnoException).syscall === 'string') return e;
  }
  return undefined;
}

/** A command with subcommands: `kavach audit verify ...`. `--help` before a subcommand lists them. */
export async function dispatch(
  command: string,
  usage: string,
  subcommands: Readonly<Record<string, (argv: string[]) => Promise<number>>>,
  argv: readonly string[],
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined) {
    process.stderr.write(usage);
    return 2;
  }
  if (isHelp(sub) || sub === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  const run = Object.hasOwn(subcommands, sub) ? subcommands[sub] : undefined;
  if (run === undefined) {
    const what = sub.startsWith('-') ? `unknown option ${sub}` : `unknown subcommand "${sub}"`;
    process.stderr.write(`${visibleLines(`${command}: ${what} (see \`${command} --help\`)`)}\n`);
    return 2;
  }
  return run(rest);
}
