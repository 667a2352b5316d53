/**
 * `kavach mcp`: run the proxy, or one of its subcommands (check, approve-tools, scan, install,
 * uninstall). Each subcommand is its own module, loaded only when used.
 */
import { runCommand, UsageError } from '../args.ts';

export const USAGE = `usage:
  kavach mcp --config kavach.toml [--http [HOST:PORT]]   run the proxy (stdio unless --http)
  kavach mcp check --config kavach.toml [--json]          start the servers once, show what the client would see
  kavach mcp approve-tools --config kavach.toml [server.tool ...] [--list]
  kavach mcp scan --config kavach.toml [--json]           scan every server's tool definitions for tool poisoning
  kavach mcp install --client claude-code|claude-desktop|codex|cursor|gemini|vscode [--scope S] [--project DIR]
                     [--config kavach.toml] [--file PATH] [--dry-run] [--allow-partial]
  kavach mcp uninstall --client ... [--scope S] [--project DIR] [--file PATH] [--dry-run]
kavach mcp SUBCOMMAND --help describes each one.
`;

const SERVE = {
  command: 'kavach mcp',
  usage: USAGE,
  // --http alone serves on the configured [http] listen address.
  options: { config: 'string', http: 'optional' },
  positionals: { name: 'SUBCOMMAND', max: 1 },
} as const;

const SUBCOMMANDS: Readonly<Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>>> = {
  check: () => import('./check.ts'),
  'approve-tools': () => import('./approve-tools.ts'),
  scan: () => import('./scan.ts'),
  install: async () => ({ run: async (argv) => (await import('./install.ts')).installCommand('install', argv) }),
  uninstall: async () => ({ run: async (argv) => (await import('./install.ts')).installCommand('uninstall', argv) }),
};

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const load = sub !== undefined && Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (load !== undefined) return (await load()).run(rest);
  return runCommand(SERVE, argv, async ({ options, positionals }) => {
    if (positionals.length > 0) throw new UsageError(`unknown subcommand "${positionals[0]}"`);
    if (options.config === undefined) throw new UsageError('--config kavach.toml is required');
    const { runProxy } = await import('../../mcp-proxy/main.ts');
    return runProxy({ configPath: options.config, http: options.http === true ? '' : options.http });
  });
}
