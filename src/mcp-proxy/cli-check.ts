import { parseArgs, stringFlag } from '../cli/args.ts';
import { loadConfig } from './config.ts';
import { startRuntime } from './runtime.ts';

/**
 * `kavach mcp check --config kavach.toml`: loads the config and policy, starts every upstream
 * once, and prints what the client would see: each server's state and each tool, listed or
 * hidden (no policy could permit it, or its definition changed). Exit 1 when a server is down.
 */
export async function checkCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['json']);
  const configPath = stringFlag(args, 'config');
  if (!configPath) {
    process.stderr.write('usage: kavach mcp check --config kavach.toml [--json]\n');
    return 2;
  }
  const config = await loadConfig(configPath);
  const principal = config.identity ?? config.http?.clients[0];
  if (!principal) {
    process.stderr.write('kavach mcp check: the config names no principal ([identity] or [[http.clients]])\n');
    return 2;
  }
  const runtime = await startRuntime(config);
  try {
    runtime.core.startUpstreams(undefined);
    const tools = await runtime.core.describeTools(principal);
    const servers = runtime.core.upstreams.map((u) => ({ name: u.name, state: u.state, error: u.lastError, tools: u.tools.length }));
    if (args.flags.has('json')) {
      process.stdout.write(`${JSON.stringify({ principal: principal.principalId, policies: runtime.gate.policyCount, servers, tools }, null, 2)}\n`);
    } else {
      const out: string[] = [`config ${config.file}`, `policy ${config.gate.policy}: ${runtime.gate.policyCount} policies${config.gate.observeOnly ? ' (observe mode: nothing is refused)' : ''}`, `principal ${principal.principalKind} '${principal.principalId}'`, ''];
      for (const s of servers) {
        out.push(`server ${s.name}: ${s.state === 'ready' ? `ready, ${s.tools} tools` : `${s.state}${s.error ? ` (${s.error})` : ''}`}`);
        for (const t of tools.filter((x) => x.server === s.name)) {
          const why = t.changed ? 'hidden: definition changed, run `kavach mcp approve-tools`' : t.listed ? 'listed' : 'hidden: no policy could permit it';
          out.push(`  ${t.exposed.padEnd(40)} ${why}`);
        }
      }
      process.stdout.write(`${out.join('\n')}\n`);
    }
    return servers.every((s) => s.state === 'ready') ? 0 : 1;
  } finally {
    await runtime.close();
  }
}
