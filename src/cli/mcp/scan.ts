import { loadConfig } from '../../mcp-proxy/config.ts';
import { scanServers, type ServerScan } from '../../mcp-proxy/definition-scan.ts';
import { terminalJson, visible } from '../../engine/terminal-text.ts';
import { runCommand, UsageError } from '../args.ts';
import { describeFindings } from './findings.ts';

const SPEC = {
  command: 'kavach mcp scan',
  usage: `usage: kavach mcp scan --config kavach.toml [--json]
  starts each configured server once, lists its tools, prompts, resources and resource
  templates and scans every definition and the server's instructions for tool poisoning
  (hidden instructions, concealment, credential access, invisible/bidi/tag characters,
  terminal escapes, encoded blobs); prints the findings per item, escaped. Serves nothing and
  changes no pin.
  exit 0: no finding; 1: a finding, or a server or list that could not be read; 2: usage error
`,
  options: { config: 'string', json: 'boolean' },
} as const;

/** `kavach mcp scan --config kavach.toml [--json]`: the tool-definition scan of every configured server (DESIGN §13). */
export function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, async ({ options }) => {
    if (options.config === undefined) throw new UsageError('--config kavach.toml is required');
    const config = await loadConfig(options.config);
    const servers = await scanServers(config.servers, { log: (m) => process.stderr.write(`kavach mcp scan: ${visible(m)}\n`) });
    const findings = servers.reduce(
      (n, s) => n + s.instructions.length + [...s.tools, ...s.listings].reduce((m, t) => m + t.findings.length, 0),
      0,
    );
    // A list a server offers but failed to give leaves that server unscanned in part.
    const unlisted = servers.filter((s) => s.state !== 'ready' || s.unlistable.length > 0).length;
    if (options.json === true) process.stdout.write(`${terminalJson({ config: config.file, findings, unlisted, servers }, 2)}\n`);
    else process.stdout.write(report(servers, findings, unlisted));
    // Fail closed: a server that could not be listed was not shown to be clean.
    return findings > 0 || unlisted > 0 ? 1 : 0;
  });
}

/** Everything a server sent (names, error text, excerpts) is escaped: none of it may act on the terminal. */
function report(servers: readonly ServerScan[], findings: number, unlisted: number): string {
  let out = '';
  for (const s of servers) {
    if (s.state !== 'ready') {
      out += `${visible(`server ${s.name}: not scanned (${s.error ?? s.state})`)}\n`;
      continue;
    }
    const suspect = s.tools.filter((t) => t.findings.length > 0);
    const suspectListings = s.listings.filter((l) => l.findings.length > 0);
    let summary = `${count(s.tools.length, 'tool')}, ${suspect.length === 0 ? 'no finding' : `${suspect.length} with findings`}`;
    if (s.listings.length > 0)
      summary += `; ${count(s.listings.length, 'prompt or resource', 'prompts and resources')}, ${suspectListings.length === 0 ? 'no finding' : `${suspectListings.length} with findings`}`;
    out += `server ${visible(s.name)}: ${summary}${s.instructions.length > 0 ? '; findings in its instructions' : ''}\n`;
    for (const failed of s.unlistable) out += `  ${visible(`not scanned: ${failed}`)}\n`;
    if (s.instructions.length > 0) out += `  instructions:\n${describeFindings(s.instructions, '    ')}`;
    for (const t of suspect) out += `  ${visible(t.action)}:\n${describeFindings(t.findings, '    ')}`;
    for (const l of suspectListings) out += `  ${l.kind} ${visible(`${s.name} ${l.name}`)}:\n${describeFindings(l.findings, '    ')}`;
  }
  const tools = servers.reduce((n, s) => n + s.tools.filter((t) => t.findings.length > 0).length, 0);
  const listings = servers.reduce((n, s) => n + s.listings.filter((l) => l.findings.length > 0).length, 0);
  const where = [
    ...(tools > 0 ? [count(tools, 'tool')] : []),
    ...(listings > 0 ? [count(listings, 'prompt or resource', 'prompts and resources')] : []),
    ...(servers.some((s) => s.instructions.length > 0) ? ['server instructions'] : []),
  ];
  const notScanned = unlisted > 0 ? `; ${count(unlisted, 'server')} not scanned` : '';
  out += findings === 0 ? `\nno finding${notScanned}\n` : `\n${count(findings, 'finding')} in ${listed(where)}${notScanned}\n`;
  return out;
}

/** `a`, `a and b`, `a, b and c`. */
function listed(parts: string[]): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
