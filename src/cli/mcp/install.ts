/** `kavach mcp install|uninstall`: the command line; the work is in mcp-proxy/install-run.ts. */
import { CLIENT_SCOPES, type Scope } from '../../mcp-proxy/install-clients.ts';
import { CLIENTS, isClientName } from '../../mcp-proxy/install-entries.ts';
import { InstallError, runInstall, runUninstall } from '../../mcp-proxy/install-run.ts';
import { InputError, runCommand, UsageError } from '../args.ts';

const USAGE = `usage:
  kavach mcp install   --client ${CLIENTS.join('|')}
                       [--scope user|local|project|workspace] [--project DIR] [--config kavach.toml]
                       [--file PATH] [--dry-run] [--allow-partial]
  kavach mcp uninstall --client ... [--scope ...] [--project DIR] [--file PATH] [--dry-run]
install moves the MCP servers of every scope of the client (Claude Code: user, local, project;
VS Code: user, workspace; Cursor, Gemini, Codex: user, project) behind one kavach entry per
scope, each with its own kavach.toml in ~/.kavach/ (observe mode, keys, audit log); a backup is
written first. A server it cannot move is listed with the reason, and the exit code is 1 unless
--allow-partial. uninstall puts the original entries back.
`;

const SPECS = {
  install: {
    command: 'kavach mcp install',
    usage: USAGE,
    options: {
      client: 'string',
      scope: 'string',
      project: 'string',
      config: 'string',
      file: 'string',
      'dry-run': 'boolean',
      'allow-partial': 'boolean',
    },
  },
  uninstall: {
    command: 'kavach mcp uninstall',
    usage: USAGE,
    options: { client: 'string', scope: 'string', project: 'string', file: 'string', 'dry-run': 'boolean' },
  },
} as const;

const SCOPES = [...new Set(Object.values(CLIENT_SCOPES).flat())];

export function installCommand(sub: 'install' | 'uninstall', argv: string[]): Promise<number> {
  return runCommand(SPECS[sub], argv, async ({ options: o }) => {
    const client = o.client;
    if (client === undefined) throw new UsageError(`--client ${CLIENTS.join('|')} is required`);
    if (!isClientName(client)) throw new UsageError(`--client ${client}: unknown client; the clients are ${CLIENTS.join(', ')}`);
    if (o.scope !== undefined && !(SCOPES as string[]).includes(o.scope))
      throw new UsageError(`--scope ${o.scope}: the scopes are ${SCOPES.join(', ')}`);
    // uninstall declares neither: absent there.
    const only = o as { config?: string; 'allow-partial'?: true };
    const run = sub === 'install' ? runInstall : runUninstall;
    try {
      return await run({
        client,
        scope: o.scope as Scope | undefined,
        project: o.project,
        file: o.file,
        config: only.config,
        dryRun: o['dry-run'] === true,
        allowPartial: only['allow-partial'] === true,
        env: process.env,
        platform: process.platform,
        cwd: process.cwd(),
        out: (text) => void process.stdout.write(text),
      });
    } catch (err) {
      if (!(err instanceof InstallError)) throw err;
      if (err.kind === 'usage') throw new UsageError(err.message);
      if (err.kind === 'input') throw new InputError(err.message);
      process.stderr.write(`kavach mcp ${sub}: ${err.message}\n`);
      return 1;
    }
  });
}
