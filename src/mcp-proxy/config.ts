import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { PRINCIPAL_KINDS, type PrincipalKind } from '../engine/context.ts';
import { resolveDrift, type DriftOptions } from '../engine/drift.ts';
import { parseDuration } from '../engine/duration.ts';
import { ConfigError } from '../engine/errors.ts';
import { suggest } from '../engine/policy/schema.ts';
import { pointerSteps } from '../audit/redact.ts';

/** Server names become tool-name prefixes, so they keep to the characters MCP clients accept. */
const SERVER_NAME = /^[a-zA-Z0-9-]{1,32}$|^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$/;

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const principalKind = z.enum(PRINCIPAL_KINDS);
const stringMap = z.record(z.string(), z.string());

/** Bounds of `max_message_bytes`: 1 KiB, and 256 MiB (a JavaScript string holds at most ~512 MiB). */
const MESSAGE_BYTES_RANGE = { min: 1024, max: 256 * 1024 * 1024 } as const;

const stdioServer = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: stringMap.default({}),
  cwd: z.string().min(1).optional(),
  /** Longest message read from the server (default 10 MiB); an answer over it fails only its call. */
  max_message_bytes: z.number().int().min(MESSAGE_BYTES_RANGE.min).max(MESSAGE_BYTES_RANGE.max).optional(),
});

const httpServer = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  headers: stringMap.default({}),
});

/** Picks the schema by its discriminating key so errors name the real bad field. */
const serverSchema = z.record(z.string(), z.unknown()).transform((s, ctx) => {
  const schema = 'command' in s ? stdioServer : 'url' in s ? httpServer : undefined;
  const known = Object.keys((schema ?? z.object({ ...stdioServer.shape, ...httpServer.shape })).shape);
  if (!schema) {
    const near =
      Object.keys(s)
        .map((k) => suggest(k, ['command', 'url']))
        .find((hint) => hint !== '') ?? '';
    ctx.addIssue({ code: 'custom', message: `a server needs either \`command\` (stdio) or \`url\` (Streamable HTTP)${near}` });
    return z.NEVER;
  }
  const parsed = schema.safeParse(s);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const { path, message } = locate(issue, () => known);
      ctx.addIssue({ code: 'custom', message, path: path as PropertyKey[] });
    }
    return z.NEVER;
  }
  return parsed.data as z.output<typeof stdioServer> | z.output<typeof httpServer>;
});

const httpClient = z.strictObject({
  token: z.string().min(16, 'a client token needs at least 16 characters'),
  principal_id: z.string().min(1),
  principal_kind: principalKind,
  roles: z.array(z.string()).default([]),
  /** The human at this client, when they answer an elicitation: an `[[approvals.approvers]]` principal_id. */
  approver: z.string().min(1).optional(),
});

/** Someone who may decide approval requests: on the web page (with a token), as `--as`, or as the human at a client. */
const approver = z.strictObject({
  /** Logs in to the approvals page; an approver without one is named only by `--as` or `client_approver`. */
  token: z.string().min(16, 'an approver token needs at least 16 characters').optional(),
  principal_id: z.string().min(1),
  principal_kind: principalKind.default('user'),
  roles: z.array(z.string()).default([]),
});

/** A JSON Pointer list (`/content`), checked as the engine reads it. */
const pointers = z.array(
  z.string().superRefine((p, ctx) => {
    try {
      pointerSteps(p);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  }),
);

/** `[http] max_sessions_per_token` when unset: a fleet of agents behind one token (a session holds about 30 KiB). */
export const DEFAULT_MAX_SESSIONS_PER_TOKEN = 256;

/** `[http] max_calls_per_token` when unset: one in flight per session of a full token, on average. */
export const DEFAULT_MAX_CALLS_PER_TOKEN = 256;

const APPROVALS_DEFAULTS = { elicit: true, hold: 120_000, approvers: [] };

const configSchema = z.strictObject({
  gate: z.strictObject({
    policy: z.string().min(1),
    observe_only: z.boolean().default(false),
    permit_ttl: duration.optional(),
    /** Gate `resources/read`, `resources/subscribe` and `prompts/get` too (and filter their lists). */
    gate_resources: z.boolean().default(false),
  }),
  identity: z
    .strictObject({
      principal_id: z.string().min(1),
      principal_kind: principalKind,
      roles: z.array(z.string()).default([]),
    })
    .optional(),
  keys: z
    .strictObject({
      path: z.string().min(1),
      passphrase_env: z.string().min(1).optional(),
      mode: z.enum(['hybrid', 'pq']).default('hybrid'),
      /** false: the key only seals the audit log; calls are forwarded without a permit. */
      sign_permits: z.boolean().default(true),
    })
    .optional(),
  audit: z
    .strictObject({
      /** `{pid}` becomes the proxy's process id: one log per process, since a log has one writer. */
      path: z.string().min(1),
      /** Keep argument values (minus `redact`) so a reviewer sees which file a call wrote, not only a hash. */
      record_args: z.boolean().default(false),
      redact: pointers.default([]),
      /** A witness every checkpoint also goes to (DESIGN §14): a Redis the log's host cannot rewind. */
      anchor: z
        .string()
        .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
        .optional(),
    })
    .optional(),
  /** Session drift (the gate's defaults, less session age, when absent). stdio sessions carry no IP or device. */
  drift: z
    .strictObject({
      enabled: z.boolean().default(true),
      warn_actions_per_minute: z.number().int().positive().optional(),
      max_actions_per_minute: z.number().int().positive().optional(),
      max_session_age: z.union([duration, z.literal(false)]).optional(),
    })
    .optional(),
  redis: z
    .strictObject({
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
      /** Public keys of every replica (key directory file), to verify broadcast invalidations. */
      peers: z.string().min(1).optional(),
      /** Deadline of each Redis command; past it the call is refused STORE_UNAVAILABLE (default 100). */
      command_timeout_ms: z.number().int().min(1).max(60_000).optional(),
      /** Prefix of every key (default `kavach:`): deployments sharing one Redis keep apart by it. */
      key_prefix: z
        .string()
        .min(1)
        .max(200)
        .regex(/^[^*?[\]\s]+$/, 'must not contain glob characters or spaces')
        .optional(),
    })
    .optional(),
  tools: z
    .strictObject({
      /** List every upstream tool, not only those the principal could be permitted. */
      show_all: z.boolean().default(false),
      /** Rug-pull protection: pin tool definitions on first sight. */
      pinning: z.boolean().default(true),
      /** Where pins are kept; default `tool-pins.json` next to the audit log (or the config). */
      pins_file: z.string().min(1).optional(),
      /** Longest a forwarded call may run upstream. */
      call_timeout: duration.default(600_000),
    })
    .default({ show_all: false, pinning: true, call_timeout: 600_000 }),
  servers: z.record(z.string(), serverSchema).refine((s) => Object.keys(s).length > 0, 'at least one server is required'),
  /** DESIGN §11: how a call that needs a person is asked (elicitation, hold, socket, web page). */
  approvals: z
    .strictObject({
      /** Ask the client's user with `elicitation/create` when the client supports it. */
      elicit: z.boolean().default(true),
      /** How long a call waits for a decision made elsewhere (0: answer APPROVAL_REQUIRED at once). */
      hold: z
        .union([z.literal(0), z.literal('0'), z.literal('0s')])
        .transform(() => 0)
        .or(duration)
        .refine((ms) => ms <= 86_400_000, 'must be at most 24h')
        .default(APPROVALS_DEFAULTS.hold),
      /** The approvals web page: HOST:PORT (loopback unless a host is given). */
      listen: z.string().min(1).optional(),
      /** Who the human at the stdio client is when they answer an elicitation (default `<identity>#user`). */
      client_approver: z.string().min(1).optional(),
      /** Where the running proxy listens for `kavach approvals` (default `kavach-approvals/` next to the audit log, else the config). */
      socket_dir: z.string().min(1).optional(),
      approvers: z.array(approver).default([]),
    })
    .default(APPROVALS_DEFAULTS),
  /** DESIGN §12: OpenTelemetry traces and metrics over OTLP/HTTP, and a Prometheus `/metrics` endpoint. */
  telemetry: z
    .strictObject({
      /** Base URL of an OTLP/HTTP receiver (a collector): traces go to `/v1/traces`, metrics to `/v1/metrics`. */
      otlp_endpoint: z.url({ protocol: /^https?$/ }).optional(),
      /** Headers sent with every export (a collector's API key). */
      otlp_headers: stringMap.default({}),
      /** The `service.name` resource attribute. */
      service_name: z.string().min(1).max(256).default('kavach-mcp'),
      /** How often metrics are pushed over OTLP. */
      export_interval: duration.refine((ms) => ms >= 100, 'must be at least 100ms').default(15_000),
      /** HOST:PORT of a Prometheus `/metrics` endpoint (loopback unless `prometheus_public`). */
      prometheus: z.string().min(1).optional(),
      /** Let `prometheus` listen on a non-loopback address: anyone who reaches it reads the metrics. */
      prometheus_public: z.boolean().default(false),
    })
    .optional(),
  http: z
    .strictObject({
      listen: z.string().min(1).default('127.0.0.1:8787'),
      /** Extra Origins allowed besides the listen address itself (DNS-rebinding protection). */
      allowed_origins: z.array(z.string()).default([]),
      /** Extra Host header values (`name:port`) for a proxy bound to a non-loopback address. */
      allowed_hosts: z.array(z.string()).default([]),
      /**
       * Sessions one token may hold open at once (many agents behind one service token each hold
       * one); opening one more closes that token's least recently used session.
       */
      max_sessions_per_token: z.number().int().positive().default(DEFAULT_MAX_SESSIONS_PER_TOKEN),
      /** tools/call one token may have in flight: a runaway agent cannot hold every upstream (or memory) from the others. */
      max_calls_per_token: z.number().int().positive().default(DEFAULT_MAX_CALLS_PER_TOKEN),
      clients: z.array(httpClient).default([]),
    })
    .optional(),
});

export interface StdioServerConfig {
  kind: 'stdio';
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** Longest message read from the server, in bytes (the transport's default when absent). */
  maxMessageBytes?: number;
}

export interface HttpServerConfig {
  kind: 'http';
  name: string;
  url: string;
  headers: Record<string, string>;
}

export type ServerConfig = StdioServerConfig | HttpServerConfig;

export interface PrincipalConfig {
  principalId: string;
  principalKind: PrincipalKind;
  roles: string[];
}

export interface HttpClientConfig extends PrincipalConfig {
  token: string;
  /** The human at this client, when they answer an elicitation (default `<principal_id>#user`). */
  approver?: string;
}

export interface ApproverConfig extends PrincipalConfig {
  token?: string;
}

export interface ApprovalsConfig {
  elicit: boolean;
  holdMs: number;
  /** The approvals web page's HOST:PORT. */
  listen?: string;
  /** The principal id of the human at the stdio client (resolved against `approvers`). */
  clientApprover?: string;
  socketDir: string;
  approvers: ApproverConfig[];
}

export interface TelemetryConfig {
  /** OTLP/HTTP base URL (traces and metrics); absent: no spans are exported. */
  otlpEndpoint?: string;
  otlpHeaders: Record<string, string>;
  serviceName: string;
  exportIntervalMs: number;
  /** Where `/metrics` is served for Prometheus to scrape. */
  prometheus?: { host: string; port: number };
}

export interface ProxyConfig {
  /** Absolute path of the file this came from (undefined for an in-memory config). */
  file?: string;
  gate: { policy: string; observeOnly: boolean; permitTtlMs?: number; gateResources: boolean };
  /** false: no drift detection; else the gate's DriftOptions. */
  drift?: DriftOptions | false;
  identity?: PrincipalConfig;
  keys?: { path: string; passphraseEnv?: string; mode: 'hybrid' | 'pq'; signPermits: boolean };
  audit?: { path: string; recordArgs: boolean; redact: string[]; anchor?: string };
  redis?: { url: string; peers?: string; commandTimeoutMs?: number; keyPrefix?: string };
  tools: { showAll: boolean; pinning: boolean; pinsFile: string; callTimeoutMs: number };
  servers: ServerConfig[];
  http?: {
    listen: string;
    allowedOrigins: string[];
    allowedHosts: string[];
    maxSessionsPerToken: number;
    maxCallsPerToken: number;
    clients: HttpClientConfig[];
  };
  approvals: ApprovalsConfig;
  telemetry?: TelemetryConfig;
}

/** Reads `kavach.toml` (or `.json`): strict, `${VAR}` expanded, paths relative to the file. */
export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ProxyConfig> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('', `cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfigText(text, extname(file).toLowerCase() === '.json' ? 'json' : 'toml', { file, env });
}

export function parseConfigText(text: string, format: 'toml' | 'json', opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): ProxyConfig {
  let doc: unknown;
  try {
    doc = format === 'json' ? JSON.parse(text) : parseToml(text);
  } catch (err) {
    throw new ConfigError('', `not valid ${format.toUpperCase()}: ${(err as Error).message}`);
  }
  return parseConfig(doc, opts);
}

/** Validates a config document. Relative paths resolve from `opts.file`'s directory (else the cwd). */
export function parseConfig(doc: unknown, opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): ProxyConfig {
  const env = opts.env ?? process.env;
  const expanded = expandEnv(doc, '', env);
  const result = configSchema.safeParse(expanded);
  if (!result.success) {
    // A misspelt key also makes the key it meant missing: name the misspelling, with its fix.
    const issues = result.error.issues;
    const first = issues.find((i) => i.code === 'unrecognized_keys') ?? (issues[0] as z.core.$ZodIssue);
    const { path, message } = locate(first, (at) => keysAt(configSchema, at));
    throw new ConfigError(formatPath(path), message);
  }
  const raw = result.data;
  const base = opts.file ? dirname(opts.file) : process.cwd();
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));

  const servers: ServerConfig[] = [];
  for (const [name, s] of Object.entries(raw.servers)) {
    // No "__" and no trailing "_": the first "__" of an exposed `<server>__<tool>` must be where the
    // server name ends, else one server's tool could take the name of another's ("a"+"_x", "a_"+"x").
    if (!SERVER_NAME.test(name) || name.includes('__') || name.endsWith('_')) {
      throw new ConfigError(
        `servers.${name}`,
        'server names use letters, digits, "-" and single "_" (not at the end; at most 32 characters)',
      );
    }
    if ('command' in s) {
      // `./run.sh` means next to the config; a bare name is looked up on PATH as usual.
      const command = !isAbsolute(s.command) && /^\.\.?[\\/]/.test(s.command) ? abs(s.command) : s.command;
      const server: StdioServerConfig = { kind: 'stdio', name, command, args: s.args, env: s.env };
      if (s.cwd !== undefined) server.cwd = abs(s.cwd);
      if (s.max_message_bytes !== undefined) server.maxMessageBytes = s.max_message_bytes;
      servers.push(server);
    } else {
      servers.push({ kind: 'http', name, url: s.url, headers: s.headers });
    }
  }

  const config: ProxyConfig = {
    gate: { policy: abs(raw.gate.policy), observeOnly: raw.gate.observe_only, gateResources: raw.gate.gate_resources },
    tools: {
      showAll: raw.tools.show_all,
      pinning: raw.tools.pinning,
      pinsFile: abs(raw.tools.pins_file ?? (raw.audit ? join(dirname(abs(raw.audit.path)), 'tool-pins.json') : 'tool-pins.json')),
      callTimeoutMs: raw.tools.call_timeout,
    },
    servers,
    approvals: approvalsConfig(raw.approvals, raw.audit ? dirname(abs(raw.audit.path)) : base, abs),
  };
  if (opts.file) config.file = opts.file;
  if (raw.gate.permit_ttl !== undefined) config.gate.permitTtlMs = raw.gate.permit_ttl;
  if (raw.drift?.enabled === false) config.drift = false;
  else {
    // A proxy session lives as long as the client's connection (a desktop app may keep it for
    // days), so session age is not a drift signal here unless the config asks for it.
    const d: DriftOptions = { maxSessionAge: false };
    if (raw.drift?.warn_actions_per_minute !== undefined) d.warnActionsPerMinute = raw.drift.warn_actions_per_minute;
    if (raw.drift?.max_actions_per_minute !== undefined) d.maxActionsPerMinute = raw.drift.max_actions_per_minute;
    if (raw.drift?.max_session_age !== undefined)
      d.maxSessionAge = raw.drift.max_session_age === false ? false : `${raw.drift.max_session_age}ms`;
    try {
      resolveDrift(d);
    } catch (err) {
      // The engine names its option (drift.maxActionsPerMinute); name the config key instead.
      const message = (err as Error).message;
      const option = /^drift\.(\w+)/.exec(message)?.[1];
      const key = option?.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      throw new ConfigError(key ? `drift.${key}` : 'drift', key ? message.replace(/^drift\.\w+ /, '') : message);
    }
    config.drift = d;
  }
  if (raw.identity)
    config.identity = { principalId: raw.identity.principal_id, principalKind: raw.identity.principal_kind, roles: raw.identity.roles };
  if (raw.keys) {
    config.keys = { path: abs(raw.keys.path), mode: raw.keys.mode, signPermits: raw.keys.sign_permits };
    if (raw.keys.passphrase_env !== undefined) config.keys.passphraseEnv = raw.keys.passphrase_env;
  }
  if (raw.audit) {
    config.audit = {
      path: abs(raw.audit.path.replaceAll('{pid}', String(process.pid))),
      recordArgs: raw.audit.record_args,
      redact: raw.audit.redact,
    };
    if (raw.audit.anchor !== undefined) config.audit.anchor = raw.audit.anchor;
  }
  if (raw.redis) {
    config.redis = { url: raw.redis.url };
    if (raw.redis.peers !== undefined) config.redis.peers = abs(raw.redis.peers);
    if (raw.redis.command_timeout_ms !== undefined) config.redis.commandTimeoutMs = raw.redis.command_timeout_ms;
    if (raw.redis.key_prefix !== undefined) config.redis.keyPrefix = raw.redis.key_prefix;
  }
  if (raw.telemetry) config.telemetry = telemetryConfig(raw.telemetry);
  if (raw.http) {
    const tokens = new Set<string>();
    raw.http.clients.forEach((c, i) => {
      if (tokens.has(c.token)) throw new ConfigError(`http.clients[${i}].token`, 'duplicate token');
      tokens.add(c.token);
    });
    config.http = {
      listen: raw.http.listen,
      allowedOrigins: raw.http.allowed_origins,
      allowedHosts: raw.http.allowed_hosts,
      maxSessionsPerToken: raw.http.max_sessions_per_token,
      maxCallsPerToken: raw.http.max_calls_per_token,
      clients: raw.http.clients.map((c) => {
        const client: HttpClientConfig = { token: c.token, principalId: c.principal_id, principalKind: c.principal_kind, roles: c.roles };
        if (c.approver !== undefined) client.approver = c.approver;
        return client;
      }),
    };
  }
  return config;
}

type RawTelemetry = NonNullable<z.output<typeof configSchema>['telemetry']>;

function telemetryConfig(raw: RawTelemetry): TelemetryConfig {
  if (raw.otlp_endpoint === undefined && raw.prometheus === undefined)
    throw new ConfigError('telemetry', 'needs otlp_endpoint, prometheus, or both (otherwise it emits nothing)');
  const out: TelemetryConfig = {
    otlpHeaders: raw.otlp_headers,
    serviceName: raw.service_name,
    exportIntervalMs: raw.export_interval,
  };
  if (raw.otlp_endpoint !== undefined) out.otlpEndpoint = raw.otlp_endpoint.replace(/\/+$/, '');
  if (raw.prometheus !== undefined) {
    const at = parseListen(raw.prometheus, 'telemetry.prometheus');
    if (at.port === 0) throw new ConfigError('telemetry.prometheus', 'needs a fixed port: Prometheus must know where to scrape');
    // Metrics name actions, principals' refusals and approval load: not for whoever can reach the port.
    if (!isLoopback(at.host) && !raw.prometheus_public)
      throw new ConfigError(
        'telemetry.prometheus',
        `${at.host} is not a loopback address; set prometheus_public = true to serve metrics to the network`,
      );
    out.prometheus = at;
  }
  return out;
}

/** 127.0.0.0/8, ::1 and localhost. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

type RawApprovals = z.output<typeof configSchema>['approvals'];

function approvalsConfig(raw: RawApprovals, defaultSocketBase: string, abs: (p: string) => string): ApprovalsConfig {
  const tokens = new Set<string>();
  const ids = new Set<string>();
  raw.approvers.forEach((a, i) => {
    if (a.token !== undefined && tokens.has(a.token)) throw new ConfigError(`approvals.approvers[${i}].token`, 'duplicate token');
    if (ids.has(a.principal_id))
      throw new ConfigError(`approvals.approvers[${i}].principal_id`, `duplicate approver ${JSON.stringify(a.principal_id)}`);
    if (a.token !== undefined) tokens.add(a.token);
    ids.add(a.principal_id);
  });
  const out: ApprovalsConfig = {
    elicit: raw.elicit,
    holdMs: raw.hold,
    socketDir: raw.socket_dir !== undefined ? abs(raw.socket_dir) : join(defaultSocketBase, 'kavach-approvals'),
    approvers: raw.approvers.map((a) => {
      const approver: ApproverConfig = { principalId: a.principal_id, principalKind: a.principal_kind, roles: a.roles };
      if (a.token !== undefined) approver.token = a.token;
      return approver;
    }),
  };
  if (raw.listen !== undefined) {
    parseListen(raw.listen, 'approvals.listen');
    if (tokens.size === 0)
      throw new ConfigError('approvals.listen', 'the approvals page needs at least one [[approvals.approvers]] entry with a token');
    out.listen = raw.listen;
  }
  if (raw.client_approver !== undefined) out.clientApprover = raw.client_approver;
  return out;
}

/** `${VAR}` in any string value reads the environment; an unset variable is an error, not "". */
function expandEnv(value: unknown, path: string, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) throw new ConfigError(path, `environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, `${path}[${i}]`, env));
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, path ? `${path}.${k}` : k, env);
    return out;
  }
  return value;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/**
 * The path names the bad field itself, as policy errors do: `servers.fs.argz: unknown key (did you
 * mean "args"?)`; `known(path)` lists the keys the table at `path` takes.
 */
function locate(
  issue: z.core.$ZodIssue,
  known: (path: readonly PropertyKey[]) => readonly string[],
): { path: readonly PropertyKey[]; message: string } {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] as string;
    const more =
      issue.keys.length > 1
        ? ` (also ${issue.keys
            .slice(1)
            .map((k) => `"${k}"`)
            .join(', ')})`
        : '';
    return { path: [...issue.path, key], message: `unknown key${suggest(key, known(issue.path))}${more}` };
  }
  // Absent is not "the wrong type" or "an invalid option": say what to add.
  if ((issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union') && issue.input === undefined) {
    return { path: issue.path, message: 'is required' };
  }
  return { path: issue.path, message: issue.message };
}

/** The keys of the table a path leads to in a schema (empty when it is no table). */
function keysAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  type Def = z.core.$ZodTypeDef & {
    innerType?: z.core.$ZodType;
    in?: z.core.$ZodType;
    valueType?: z.core.$ZodType;
    element?: z.core.$ZodType;
    shape?: Record<string, z.core.$ZodType>;
  };
  let at: z.core.$ZodType | undefined = schema;
  let step = 0;
  while (at !== undefined) {
    const def: Def = at._zod.def;
    if (def.innerType)
      at = def.innerType; // optional, default
    else if (def.type === 'pipe') at = def.in;
    else if (step === path.length) return def.shape ? Object.keys(def.shape) : [];
    else if (def.shape) at = def.shape[String(path[step++])];
    else if (def.valueType ?? def.element) {
      at = def.valueType ?? def.element; // a record's value or an array's item: skip its key or index
      step++;
    } else return [];
  }
  return [];
}

/** Splits `HOST:PORT` (`[::1]:8787` too); the host defaults to 127.0.0.1. */
export function parseListen(listen: string, key = 'http.listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):(\d{1,5})$/.exec(listen) ?? /^()()(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new ConfigError(key, `"${listen}" is not HOST:PORT`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}
