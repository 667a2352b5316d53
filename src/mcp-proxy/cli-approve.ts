import { parseArgs, stringFlag } from '../cli/args.ts';
import { loadConfig } from './config.ts';
import { approvePending, readPins, type ToolDefinition } from './pinning.ts';

/**
 * `kavach mcp approve-tools --config kavach.toml [server.tool ...] [--list]`: shows each held-back
 * tool's change and accepts it (all of them, or the ones named). A running proxy picks the
 * approval up from the pin file at once.
 */
export async function approveTools(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['list']);
  const configPath = stringFlag(args, 'config');
  if (!configPath) {
    process.stderr.write('kavach mcp approve-tools: --config is required\n');
    return 2;
  }
  const config = await loadConfig(configPath);
  const file = config.tools.pinsFile;
  const current = await readPins(file);
  const pending = Object.keys(current.pending);
  if (pending.length === 0) {
    process.stdout.write(`no tool is waiting for approval (${file})\n`);
    return 0;
  }
  const unknown = args.positionals.filter((a) => !pending.includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`not waiting for approval: ${unknown.join(', ')} (waiting: ${pending.join(', ')})\n`);
    return 1;
  }
  // Exactly what was shown is approved: a definition that changes again meanwhile stays pending.
  const reviewed: Record<string, string> = {};
  for (const action of pending) {
    if (args.positionals.length > 0 && !args.positionals.includes(action)) continue;
    process.stdout.write(describeChange(action, current.tools[action]?.definition, current.pending[action]?.definition));
    reviewed[action] = current.pending[action]?.hash as string;
  }
  if (args.flags.has('list')) return 0;
  const { approved } = await approvePending(file, args.positionals, reviewed);
  process.stdout.write(`approved ${approved.length} tool${approved.length === 1 ? '' : 's'}: ${approved.join(', ')}\n`);
  const changedAgain = Object.keys(reviewed).filter((a) => !approved.includes(a));
  if (changedAgain.length > 0) {
    process.stderr.write(`changed again while you reviewed, still waiting: ${changedAgain.join(', ')}; run approve-tools again\n`);
    return 1;
  }
  return 0;
}

/** What the operator reviews before approving: every changed field, old and new. */
export function describeChange(action: string, before: ToolDefinition | undefined, after: ToolDefinition | undefined): string {
  const lines = [`${action} changed:`];
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  for (const key of keys) {
    const a = shown((before as Record<string, unknown> | undefined)?.[key]);
    const b = shown((after as Record<string, unknown> | undefined)?.[key]);
    if (a === b) continue;
    lines.push(`  ${key}:`, `  - ${a ?? '(none)'}`, `  + ${b ?? '(none)'}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Characters that do not show, or reorder what follows (bidi), and Unicode tag characters (ASCII smuggling). */
const INVISIBLE = /[\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{e0000}-\u{e007f}]/gu;

/** JSON, with every character a reviewer could not see written as an escape. */
function shown(value: unknown): string | undefined {
  return JSON.stringify(value)?.replace(INVISIBLE, (c) => {
    const code = c.codePointAt(0) as number;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
