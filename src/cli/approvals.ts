/**
 * `kavach approvals list|show|grant|deny --config kavach.toml`: the requests a running proxy holds
 * for a person (DESIGN §11), decided out of band. It reaches every proxy of that config through
 * its unix socket (`[approvals] socket_dir`), or, when none answers and `[redis]` is set, the
 * shared Redis store directly.
 */
import { userInfo } from 'node:os';
import { Approvals } from '../engine/approvals/service.ts';
import { ApprovalError, APPROVAL_STATUSES, type ApprovalRequest, type ApprovalStatus } from '../engine/approvals/types.ts';
import { APPROVER_TOKEN_ENV, claimedApprover } from '../mcp-proxy/approvals/approvers.ts';
import { connectAll, requestsOf, type ControlConnection } from '../mcp-proxy/approvals/control-client.ts';
import type { ControlResponse } from '../mcp-proxy/approvals/control-protocol.ts';
import { loadConfig, type ProxyConfig } from '../mcp-proxy/config.ts';
import { dispatch, InputError, runCommand, UsageError } from './args.ts';
import { terminalJson, visible } from '../engine/terminal-text.ts';

const USAGE = `usage:
  kavach approvals list --config kavach.toml [--status pending|granted|denied|expired|used|all] [--json]
      the requests waiting for a person (--status pending, the default), newest first
  kavach approvals show ID --config kavach.toml [--json]
      one request: the call (tool, caller, arguments as the approver may see them), why, its decisions
  kavach approvals grant ID --config kavach.toml [--as APPROVER] [--note TEXT]
  kavach approvals deny ID --config kavach.toml [--as APPROVER] [--note TEXT]
      decide it: APPROVER (default: your login name) is recorded in the audit log with the note, and
      has the roles its [[approvals.approvers]] entry lists (none otherwise). An approver whose entry
      has a token decides only with it in ${'$'}${APPROVER_TOKEN_ENV}. Nobody decides their own call.
The running proxy is reached through its socket in [approvals] socket_dir (only its owner can open
it), or through Redis when [redis] is set and no proxy answers here (a decision taken over Redis is
kept with the request in Redis; the proxy's audit log records the call it permits).
Exit 0 when done, 1 when the request is unknown or the decision is refused, 2 for a wrong command line.
`;

const COMMAND = 'kavach approvals';
const LIST = { command: `${COMMAND} list`, usage: USAGE, options: { config: 'string', status: 'string', json: 'boolean' } } as const;
const SHOW = {
  command: `${COMMAND} show`,
  usage: USAGE,
  options: { config: 'string', json: 'boolean' },
  positionals: { name: 'ID', min: 1, max: 1 },
} as const;
const DECIDE = {
  usage: USAGE,
  options: { config: 'string', as: 'string', note: 'string' },
  positionals: { name: 'ID', min: 1, max: 1 },
} as const;

/** Where the requests are read and decided: the running proxies, or the shared store. */
interface Backend {
  list(status: ApprovalStatus | undefined): Promise<ApprovalRequest[]>;
  get(id: string): Promise<ApprovalRequest | undefined>;
  decide(id: string, decision: 'grant' | 'deny', as: string, token: string | undefined, note: string | undefined): Promise<ControlResponse>;
  close(): Promise<void>;
  /** Said after a decision, when it matters where it was taken. */
  notice?: string;
}

export function run(argv: string[]): Promise<number> {
  return dispatch(
    COMMAND,
    USAGE,
    {
      list: (rest) =>
        runCommand(LIST, rest, async ({ options }) => {
          const status = statusOption(options.status);
          return withBackend(options.config, async (backend) => {
            const found = await backend.list(status);
            if (options.json) process.stdout.write(`${JSON.stringify(found, null, 2)}\n`);
            else
              process.stdout.write(
                found.length === 0 ? `no ${status ?? ''}${status ? ' ' : ''}approval requests\n` : found.map(line).join(''),
              );
            return 0;
          });
        }),
      show: (rest) =>
        runCommand(SHOW, rest, async ({ options, positionals }) =>
          withBackend(options.config, async (backend) => {
            const id = positionals[0] as string;
            const found = await backend.get(id);
            if (!found) {
              process.stderr.write(`${visible(`${COMMAND} show: no approval request ${id}`)}\n`);
              return 1;
            }
            process.stdout.write(options.json ? `${JSON.stringify(found, null, 2)}\n` : details(found));
            return 0;
          }),
        ),
      grant: (rest) => decideCommand('grant', rest),
      deny: (rest) => decideCommand('deny', rest),
    },
    argv,
  );
}

function decideCommand(decision: 'grant' | 'deny', argv: string[]): Promise<number> {
  const spec = { ...DECIDE, command: `${COMMAND} ${decision}` };
  return runCommand(spec, argv, async ({ options, positionals }) =>
    withBackend(options.config, async (backend) => {
      const id = positionals[0] as string;
      const as = options.as ?? userInfo().username;
      const token = process.env[APPROVER_TOKEN_ENV] || undefined;
      const answer = await backend.decide(id, decision, as, token, options.note);
      if (!answer.ok) {
        process.stderr.write(`${visible(`${spec.command}: [${answer.code}] ${answer.message}`)}\n`);
        return 1;
      }
      const [after] = requestsOf(answer);
      const done = decision === 'grant' ? 'granted' : 'denied';
      process.stdout.write(`${visible(`${done} ${id} as ${as}: the request is now ${after?.status ?? 'unknown'}`)}\n`);
      if (backend.notice) process.stderr.write(`${backend.notice}\n`);
      return 0;
    }),
  );
}

function statusOption(value: string | undefined): ApprovalStatus | undefined {
  if (value === undefined) return 'pending';
  if (value === 'all') return undefined;
  if (!(APPROVAL_STATUSES as readonly string[]).includes(value))
    throw new UsageError(`--status must be one of ${APPROVAL_STATUSES.join(', ')}, all`);
  return value as ApprovalStatus;
}

async function withBackend(configPath: string | undefined, body: (backend: Backend) => Promise<number>): Promise<number> {
  if (configPath === undefined) throw new UsageError('--config kavach.toml is required');
  const config = await loadConfig(configPath);
  const backend = await open(config);
  try {
    return await body(backend);
  } finally {
    await backend.close();
  }
}

async function open(config: ProxyConfig): Promise<Backend> {
  const proxies = await connectAll(config.approvals.socketDir);
  if (proxies.length > 0) return socketBackend(proxies);
  if (config.redis) return redisBackend(config);
  throw new InputError(
    `no running proxy answers in ${config.approvals.socketDir} (is \`kavach mcp --config ...\` running as this user?), and there is no [redis] to reach its requests`,
  );
}

function socketBackend(proxies: ControlConnection[]): Backend {
  const each = (request: Parameters<ControlConnection['ask']>[0]): Promise<ControlResponse[]> =>
    Promise.all(proxies.map((p) => p.ask(request)));
  const failed = (answers: ControlResponse[]): void => {
    const bad = answers.find((a): a is Extract<ControlResponse, { ok: false }> => !a.ok);
    if (bad && answers.every((a) => !a.ok)) throw new InputError(`the proxy refused: [${bad.code}] ${bad.message}`);
  };
  return {
    async list(status) {
      const answers = await each(status === undefined ? { op: 'list' } : { op: 'list', status });
      failed(answers);
      // Proxies sharing Redis see the same requests: each once, newest first.
      const byId = new Map<string, ApprovalRequest>();
      for (const a of answers) for (const r of requestsOf(a)) byId.set(r.id, r);
      return [...byId.values()].sort((a, b) => b.createdAt - a.createdAt);
    },
    async get(id) {
      const answers = await each({ op: 'get', id });
      failed(answers);
      return answers.flatMap(requestsOf)[0];
    },
    async decide(id, decision, as, token, note) {
      // Each proxy holds its own requests (unless they share Redis): the one that knows the id decides.
      let last: ControlResponse = { ok: false, code: 'NOT_FOUND', message: `no approval request ${id}` };
      for (const p of proxies) {
        last = await p.ask({
          op: 'decide',
          id,
          decision,
          as,
          ...(token !== undefined ? { token } : {}),
          ...(note !== undefined ? { note } : {}),
        });
        if (last.ok || last.code !== 'NOT_FOUND') return last;
      }
      return last;
    },
    async close() {
      for (const p of proxies) p.close();
    },
  };
}

async function redisBackend(config: ProxyConfig): Promise<Backend> {
  const redis = config.redis as NonNullable<ProxyConfig['redis']>;
  const { RedisApprovalStore } = await import('../redis/approval-store.ts');
  const store = new RedisApprovalStore(redis.url, {
    onWarning: () => undefined,
    ...(redis.commandTimeoutMs !== undefined ? { commandTimeoutMs: redis.commandTimeoutMs } : {}),
    ...(redis.keyPrefix !== undefined ? { keyPrefix: redis.keyPrefix } : {}),
  });
  // No audit log here: the proxies own theirs (one writer each). The decision stays with the request.
  const approvals = new Approvals({ store, clock: Date.now, audit: undefined, record: () => undefined, warn: () => undefined });
  return {
    list: (status) => approvals.list(status === undefined ? {} : { status }),
    get: (id) => approvals.get(id),
    async decide(id, decision, as, token, note) {
      const claimed = claimedApprover(config.approvals, as, token);
      if ('refused' in claimed) return { ok: false, code: 'NOT_AN_APPROVER', message: claimed.refused };
      try {
        const request = await approvals.decide(id, {
          approver: claimed.approver,
          decision,
          ...(note !== undefined ? { note } : {}),
        });
        return { ok: true, request };
      } catch (err) {
        if (err instanceof ApprovalError) return { ok: false, code: err.code, message: err.message };
        throw new InputError(`Redis: ${(err as Error).message}`);
      }
    },
    close: () => store.close(),
    notice:
      'decided through Redis (no running proxy answered on this host): the decision is kept with the request in Redis, not in an audit log',
  };
}

function line(r: ApprovalRequest): string {
  return `${visible(`${r.id}  ${r.status.padEnd(7)}  ${r.action}  by ${r.principal.id}  until ${iso(r.expiresAt)}  ${r.reason}`)}\n`;
}

function details(r: ApprovalRequest): string {
  const rows: [string, string][] = [
    ['request', r.id],
    ['status', r.status],
    [
      'action',
      `${r.action}${r.audience !== undefined ? ` (server ${r.audience})` : ''}${r.resource !== undefined ? ` on ${r.resource}` : ''}`,
    ],
    ['caller', `${r.principal.id} (${r.principal.kind}${r.principal.roles?.length ? `; roles ${r.principal.roles.join(', ')}` : ''})`],
    ['why', `${r.reason} (policy '${r.policy}')`],
    ['session', r.sessionId ?? '-'],
    ['created', iso(r.createdAt)],
    ['expires', iso(r.expiresAt)],
  ];
  const out = rows.map(([k, v]) => `${k.padEnd(10)}${visible(v)}\n`);
  out.push(
    `${'arguments'.padEnd(10)}${r.args === undefined ? '(not kept)' : terminalJson(r.args, 2).replace(/\n/g, `\n${' '.repeat(10)}`)}\n`,
  );
  out.push(`${'args hash'.padEnd(10)}${visible(r.argsHash)}\n`);
  for (const d of r.decisions) {
    const who = `${d.approver.id} (${d.approver.kind}${d.approver.roles?.length ? `; roles ${d.approver.roles.join(', ')}` : ''})`;
    out.push(`${visible(`decision  ${d.decision} by ${who} at ${iso(d.at)}${d.note !== undefined ? `: ${d.note}` : ''}`)}\n`);
  }
  return out.join('');
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
