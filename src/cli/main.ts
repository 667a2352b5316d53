#!/usr/bin/env node
/**
 * `kavach <command>`: each subcommand lives in its own module, loaded only when used so that
 * optional dependencies (MCP SDK, Redis) are not needed by the others.
 * A module exports `run(argv: string[]): Promise<number>` (the exit code).
 */
import { visibleLines } from '../engine/terminal-text.ts';
import { packageVersion } from './version.ts';

const COMMANDS: Record<string, { module: string; summary: string }> = {
  policy: { module: 'policy', summary: 'check FILE... | explain FILE --context ctx.json' },
  keygen: { module: 'keygen', summary: '--out DIR [--passphrase-env VAR] [--expires DURATION]' },
  permit: { module: 'permit', summary: 'verify TOKEN --keys public.json [--audience A] [--action X]' },
  audit: { module: 'audit', summary: 'verify | show | stats | report' },
  mcp: { module: 'mcp/index', summary: 'run the MCP proxy (--config kavach.toml), check, install, uninstall, approve-tools, scan' },
  approvals: { module: 'approvals', summary: 'list | show | grant | deny ID --config kavach.toml: calls waiting for a person' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  kavach ${name.padEnd(9)} ${c.summary}`);
  return `usage:\n${lines.join('\n')}\n  kavach --version\nkavach COMMAND --help describes each command.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(usage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (name === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    const what = name.startsWith('-') ? `unknown option ${name}` : `unknown command "${name}"`;
    process.stderr.write(`${visibleLines(`kavach: ${what} (see \`kavach --help\`)`)}\n`);
    return 2;
  }
  let mod: { run(argv: string[]): Promise<number> };
  try {
    // Source checkouts run .ts through tsx; the published package runs compiled .js.
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    mod = (await import(`./${command.module}${ext}`)) as typeof mod;
  } catch (err) {
    process.stderr.write(`kavach: the "${name}" command is not available: ${(err as Error).message}\n`);
    return 2;
  }
  return mod.run(rest);
}

/**
 * `kavach audit show log | head` closes the pipe early: that is the reader's choice, not an error.
 * Not for `kavach mcp`, whose stdout is the protocol: its transport handles a gone client and
 * shuts down cleanly (sealing the audit log).
 */
export function quietOnClosedPipe(command: string | undefined): void {
  if (command === 'mcp') return;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (invokedDirectly) {
  quietOnClosedPipe(process.argv[2]);
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`kavach: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
