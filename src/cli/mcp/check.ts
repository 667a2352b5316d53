import { loadConfig } from '../../mcp-proxy/config.ts';
import { startRuntime } from '../../mcp-proxy/runtime.ts';
import { STARTUP_WAIT_MS } from '../../mcp-proxy/upstream-pool.ts';
import { InputError, runCommand, UsageError } from '../args.ts';
import { terminalJson, visible } from '../../engine/terminal-text.ts';

const SPEC = {
  command: 'kavach mcp check',
  usage: `usage: kavach mcp check --config kavach.toml [--json]
  loads the config and policy, starts every server once and shows what the client would see:
  each server's state and each tool, listed or hidden; exit 1 when a server is down
`,
  options: { config: 'string', json: 'boolean' },
} as const;

const HELD = { changed: 'definition changed', new: 'added after its server was pinned', suspect: 'suspect definition' } as const;

/**
 * `kavach mcp check --config kavach.toml`: loads the config and policy, starts every upstream
 * once, and prints what the client would see: each server's state and each tool, listed or
 * hidden (no policy could permit it, or it waits for approval). Exit 1 when a server is down.
 */
export function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, async ({ options }) => {
    if (options.config === undefined) throw new UsageError('--config kavach.toml is required');
    return check(options.config, options.json === true);
  });
}

async function check(configPath: string, json: boolean): Promise<number> {
  const config = await loadConfig(configPath);
  const principal = config.identity ?? config.http?.clients[0];
  if (!principal) throw new InputError('the config names no principal ([identity] or [[http.clients]])');
  // A check is no traffic to report, and a running proxy may hold the Prometheus port: no telemetry.
  const { telemetry: _telemetry, ...quiet } = config;
  const runtime = await startRuntime(quiet);
  try {
    runtime.core.startUpstreams(undefined);
    const tools = await runtime.core.describeTools(principal);
    const servers = runtime.core.upstreams.map((u) => ({ name: u.name, state: u.state, error: u.lastError, tools: u.tools.length }));
    if (json) {
      process.stdout.write(
        `${terminalJson({ principal: principal.principalId, policies: runtime.gate.policyCount, servers, tools }, 2)}\n`,
      );
    } else {
      const out: string[] = [
        `config ${config.file}`,
        `policy ${config.gate.policy}: ${runtime.gate.policyCount} policies${config.gate.observeOnly ? ' (observe mode: nothing is refused)' : ''}`,
        `principal ${principal.principalKind} '${principal.principalId}'`,
        '',
      ];
      for (const s of servers) {
        out.push(`server ${s.name}: ${s.state === 'ready' ? `ready, ${s.tools} tools` : `${s.state}${s.error ? ` (${s.error})` : ''}`}`);
        // Else a first `npx -y` still downloading the server reads as a bare "starting", exit 1.
        if (s.state === 'starting')
          out.push(`  not up within ${STARTUP_WAIT_MS / 1000} s (a first \`npx -y\` may still be downloading it): run check again`);
        for (const t of tools.filter((x) => x.server === s.name)) {
          const why = t.held
            ? `hidden: ${HELD[t.held.reason]}${t.held.findings.length > 0 ? ` (scan found ${t.held.findings.join(', ')})` : ''}, run \`kavach mcp approve-tools\``
            : t.unpinned !== undefined
              ? 'hidden: its pin could not be saved'
              : t.listed
                ? 'listed'
                : 'hidden: no policy could permit it';
          out.push(`  ${t.exposed.padEnd(40)} ${why}`);
        }
      }
      // Tool names and error text come from the servers: nothing they send may act on the terminal.
      process.stdout.write(`${out.map(visible).join('\n')}\n`);
    }
    return servers.every((s) => s.state === 'ready') ? 0 : 1;
  } finally {
    await runtime.close();
  }
}
