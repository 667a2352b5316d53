import { ConfigError } from '../engine/errors.ts';
import { parseArgs, stringFlag } from './args.ts';

const USAGE = `usage:
  kavach mcp --config kavach.toml [--http HOST:PORT]   run the proxy (stdio unless --http)
  kavach mcp check --config kavach.toml [--json]          start the servers once, show what the client would see
  kavach mcp approve-tools --config kavach.toml [server.tool ...] [--list]
  kavach mcp install --client claude-desktop|cursor|claude-code|vscode [--config kavach.toml] [--file PATH] [--dry-run]
  kavach mcp uninstall --client ... [--file PATH] [--dry-run]
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'check') return await (await import('../mcp-proxy/cli-check.ts')).checkCommand(rest);
    if (sub === 'approve-tools') return await (await import('../mcp-proxy/cli-approve.ts')).approveTools(rest);
    if (sub === 'install' || sub === 'uninstall') return await (await import('../mcp-proxy/cli-install.ts')).installCommand(sub, rest);
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      process.stderr.write(USAGE);
      return 0;
    }
    if (sub !== undefined && !sub.startsWith('--')) {
      process.stderr.write(`kavach mcp: unknown subcommand "${sub}"\n${USAGE}`);
      return 2;
    }
    return await serve(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`kavach mcp: config error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

async function serve(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const configPath = stringFlag(args, 'config');
  if (!configPath) {
    process.stderr.write(`kavach mcp: --config is required\n${USAGE}`);
    return 2;
  }
  const http = args.flags.get('http');
  const { runProxy } = await import('../mcp-proxy/main.ts');
  return runProxy({ configPath, http: http === true ? '' : http });
}
