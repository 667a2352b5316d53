import { loadConfig } from '../../mcp-proxy/config.ts';
import { approvePending, holdOf, readPins, type PinEntry, type ToolDefinition } from '../../mcp-proxy/pinning.ts';
import { runCommand, UsageError } from '../args.ts';
import { visible } from '../../engine/terminal-text.ts';
import { describeFindings } from './findings.ts';

const SPEC = {
  command: 'kavach mcp approve-tools',
  usage: `usage: kavach mcp approve-tools --config kavach.toml [server.tool ...] [--list]
  shows each held-back tool and accepts it: all of them, or the ones named; --list only
  shows them. A changed tool shows every changed field, old and new; a new or suspect one
  its whole definition; each shows what the tool-definition scan found, escaped. A running
  proxy picks the approval up from the pin file at once.
`,
  options: { config: 'string', list: 'boolean' },
  positionals: { name: 'server.tool' },
} as const;

/**
 * `kavach mcp approve-tools --config kavach.toml [server.tool ...] [--list]`: shows each held-back
 * tool (its change, or its definition, and the scan's findings) and accepts it (all of them, or the ones named). A running proxy picks the
 * approval up from the pin file at once.
 */
export function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, async ({ options, positionals }) => {
    if (options.config === undefined) throw new UsageError('--config kavach.toml is required');
    return approveTools(options.config, positionals, options.list === true);
  });
}

async function approveTools(configPath: string, named: string[], listOnly: boolean): Promise<number> {
  const config = await loadConfig(configPath);
  const file = config.tools.pinsFile;
  const current = await readPins(file);
  const pending = Object.keys(current.pending);
  if (pending.length === 0) {
    process.stdout.write(`${visible(`no tool is waiting for approval (${file})`)}\n`);
    return 0;
  }
  const unknown = named.filter((a) => !pending.includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`${visible(`not waiting for approval: ${unknown.join(', ')} (waiting: ${pending.join(', ')})`)}\n`);
    return 1;
  }
  // Exactly what was shown is approved: a definition that changes again meanwhile stays pending.
  const reviewed: Record<string, string> = {};
  for (const action of pending) {
    if (named.length > 0 && !named.includes(action)) continue;
    process.stdout.write(describePending(action, current.tools[action], current.pending[action] as PinEntry));
    reviewed[action] = current.pending[action]?.hash as string;
  }
  if (listOnly) return 0;
  const { approved } = await approvePending(file, named, reviewed);
  process.stdout.write(`${visible(`approved ${approved.length} tool${approved.length === 1 ? '' : 's'}: ${approved.join(', ')}`)}\n`);
  const changedAgain = Object.keys(reviewed).filter((a) => !approved.includes(a));
  if (changedAgain.length > 0) {
    process.stderr.write(
      `${visible(`changed again while you reviewed, still waiting: ${changedAgain.join(', ')}; run approve-tools again`)}\n`,
    );
    return 1;
  }
  return 0;
}

/**
 * What the operator reviews of one held tool: a changed one's change, a new or suspect one's
 * whole definition, and what the tool-definition scan found in it. Escaped throughout (below).
 */
export function describePending(action: string, pinned: PinEntry | undefined, pending: PinEntry): string {
  const hold = holdOf(pending, pinned);
  let text: string;
  if (hold.reason === 'changed') text = describeChange(action, pinned?.definition, pending.definition);
  else {
    const why =
      hold.reason === 'new' ? 'is new: its server listed it after its tools were approved' : 'is held: the tool-definition scan found';
    const lines = [`${visible(action)} ${why}${hold.reason === 'new' ? '' : ' something in it'}:`];
    for (const [key, value] of Object.entries(pending.definition ?? {})) lines.push(`  ${visible(key)}: ${shown(value) ?? '(none)'}`);
    text = `${lines.join('\n')}\n`;
  }
  return text + describeFindings(hold.findings);
}

/**
 * What the operator reviews before approving: every changed field, old and new. Everything in it
 * comes from an MCP server, which may be the attacker: every character that would not show as
 * itself (invisible, bidi, C0/C1 controls such as U+009B, CSI on a UTF-8 terminal) is an escape,
 * so a description cannot hide its payload or redraw the diff around it.
 */
export function describeChange(action: string, before: ToolDefinition | undefined, after: ToolDefinition | undefined): string {
  const lines = [`${visible(action)} changed:`];
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  for (const key of keys) {
    const a = shown((before as Record<string, unknown> | undefined)?.[key]);
    const b = shown((after as Record<string, unknown> | undefined)?.[key]);
    if (a === b) continue;
    lines.push(`  ${visible(key)}:`, `  - ${a ?? '(none)'}`, `  + ${b ?? '(none)'}`);
  }
  return `${lines.join('\n')}\n`;
}

/** JSON, with every character a reviewer could not see written as an escape. */
function shown(value: unknown): string | undefined {
  const json = JSON.stringify(value);
  return json === undefined ? undefined : visible(json);
}
