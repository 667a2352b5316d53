import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { z } from 'zod';
import { ConfigError, PolicyError } from '../engine/errors.ts';
import { visible } from '../engine/terminal-text.ts';
import { Gate, type GateOptions } from '../engine/gate.ts';
import type { TelemetryRuntime } from '../telemetry/sdk.ts';
import { AuditLog, type AuditAnchor } from '../audit/index.ts';
import { OUTCOME_FINDINGS_SCHEMA } from '../audit/entry.ts';
import { KeyPair, PermitSigner, PublicKeyDirectory } from '../crypto/index.ts';
import type { ProxyConfig } from './config.ts';
import { reportObserved } from './observe-log.ts';
import { ToolPins } from './pinning.ts';
import { ProxyCore } from './proxy.ts';
import { REFUSAL_REASON_MAX, type OutcomeSink } from './tool-calls.ts';

/**
 * The proxy's log line on stderr. Messages quote what upstreams chose (tool names, error text):
 * escaped, so none of it can act on the terminal or forge a line (`kavach mcp check` prints these).
 */
export function log(message: string): void {
  process.stderr.write(`kavach mcp: ${visible(message)}\n`);
}

/** What a configured runtime holds open; `close` releases it in order (gate, audit last). */
export interface ProxyRuntime {
  config: ProxyConfig;
  gate: Gate;
  core: ProxyCore;
  reload(reason: string): Promise<void>;
  close(): Promise<void>;
}

/** Refusals the proxy gives before the gate is asked (a changed, new or suspect tool, a server that is down, a token's calls over its cap). */
const REFUSAL_RECORD = z.strictObject({
  evaluationId: z.string(),
  principal: z.string(),
  session: z.string(),
  action: z.string(),
  code: z.enum(['TOOL_CHANGED', 'TOOL_SUSPECT', 'UPSTREAM_UNAVAILABLE', 'RATE_LIMITED']),
  reason: z.string().max(REFUSAL_REASON_MAX),
});

/** What a screen found in what a server sent of its own accord (sampling, elicitation, a log line). */
const SCREENED_RECORD = z.strictObject({
  server: z.string().max(512),
  method: z.enum(['sampling/createMessage', 'elicitation/create', 'notifications/message']),
  findings: OUTCOME_FINDINGS_SCHEMA,
  withheld: z.literal(true).optional(),
});

interface Closable {
  close(): Promise<unknown> | unknown;
}

/** Redis needs ioredis, an optional peer dependency: loaded only when [redis] or an anchor is configured. */
async function loadRedis(key = 'redis'): Promise<typeof import('../redis/index.ts')> {
  try {
    return await import('../redis/index.ts');
  } catch (err) {
    throw new ConfigError(
      key,
      `${key === 'redis' ? '[redis]' : key} needs the optional ioredis package (npm install ioredis): ${(err as Error).message}`,
    );
  }
}

/** Builds the gate and its collaborators from the config. Nothing is half-open on failure. */
export async function startRuntime(config: ProxyConfig): Promise<ProxyRuntime> {
  const closers: Closable[] = [];
  try {
    const opts: GateOptions = { observeOnly: config.gate.observeOnly };
    let telemetry: TelemetryRuntime | undefined;
    if (config.telemetry) {
      // First in, so closed last: the final export carries everything down to the sealed audit log.
      telemetry = await (await import('../telemetry/sdk.ts')).startTelemetry(config.telemetry, log);
      closers.push(telemetry);
      opts.telemetry = { meter: telemetry.meter, ...(telemetry.tracer ? { tracer: telemetry.tracer } : {}) };
    }
    if (config.gate.permitTtlMs !== undefined) opts.permitTtlMs = config.gate.permitTtlMs;
    if (config.drift !== undefined) opts.drift = config.drift;
    // What the audit log keeps from reviewers, approvers do not see either.
    if (config.audit && config.audit.redact.length > 0) opts.approvalRedact = config.audit.redact;
    let keyPair: KeyPair | undefined;
    const mode = config.keys?.mode ?? 'hybrid';
    if (config.keys) {
      const envName = config.keys.passphraseEnv;
      const passphrase = envName !== undefined ? process.env[envName] : undefined;
      if (envName !== undefined && passphrase === undefined)
        throw new ConfigError('keys.passphrase_env', `environment variable ${envName} is not set`);
      try {
        keyPair = await KeyPair.load(config.keys.path, passphrase !== undefined ? { passphrase } : {});
      } catch (err) {
        throw new ConfigError('keys.path', `cannot load ${config.keys.path}: ${(err as Error).message}`);
      }
      if (config.keys.signPermits) {
        const signer = PermitSigner.fromKeyPair(keyPair, { mode });
        opts.signer = signer;
        closers.push(signer); // gives its signing workers back on shutdown
      }
    }
    let outcomes: OutcomeSink | undefined;
    if (config.audit) {
      if (keyPair === undefined) throw new ConfigError('audit', '[audit] needs [keys]: the log signs its checkpoints with that key');
      let anchor: AuditAnchor | undefined;
      if (config.audit.anchor !== undefined) {
        // Closed after the log (closers run in reverse): the log's final checkpoint goes to it.
        anchor = new (await loadRedis('audit.anchor')).RedisAuditAnchor(config.audit.anchor, { onWarning: log });
        closers.push(anchor);
      }
      let auditLog: AuditLog;
      try {
        auditLog = await AuditLog.open(config.audit.path, {
          keyPair,
          mode,
          recordArgs: config.audit.recordArgs,
          redact: config.audit.redact,
          recordTypes: { 'kavach.mcp_refusal': REFUSAL_RECORD, 'kavach.mcp_screened': SCREENED_RECORD },
          onWarning: log,
          ...(anchor !== undefined ? { anchor } : {}),
        });
      } catch (err) {
        throw new ConfigError('audit.path', `cannot open ${config.audit.path}: ${(err as Error).message}`);
      }
      closers.push(auditLog);
      opts.audit = auditLog;
      outcomes = {
        append: (r) =>
          r.type === 'outcome'
            ? auditLog.append({
                type: 'outcome',
                evaluationId: r.evaluationId,
                // The same session (and action) as the verdict record, or the report shows a "(no session)" row.
                ...(r.action !== undefined ? { action: r.action } : {}),
                ...(r.session !== undefined ? { session: r.session } : {}),
                outcome: r.outcome,
                durationMs: Math.round(r.durationMs * 1000) / 1000,
                time: r.time,
                ...(r.error !== undefined ? { error: r.error } : {}),
                // Result screening: where something was found (never the value), and whether it was withheld.
                ...(r.findings ? { findings: r.findings } : {}),
                ...(r.withheld ? { withheld: r.withheld } : {}),
                ...(r.traceId ? { traceId: r.traceId } : {}),
              })
            : auditLog.append({ ...r }),
      };
    }
    if (config.gate.observeOnly) opts.audit = reportObserved(opts.audit, log);
    if (config.redis) {
      const redis = await loadRedis();
      const url = config.redis.url;
      const storeOptions = {
        onWarning: log,
        ...(config.redis.commandTimeoutMs !== undefined ? { commandTimeoutMs: config.redis.commandTimeoutMs } : {}),
        ...(config.redis.keyPrefix !== undefined ? { keyPrefix: config.redis.keyPrefix } : {}),
      };
      // Replicas share windows on Redis' clock: one replica's clock drift cannot loosen a limit.
      const rate = new redis.RedisRateStore(url, { ...storeOptions, clock: 'redis' });
      const session = new redis.RedisSessionStore(url, storeOptions);
      const replay = new redis.RedisReplayStore(url, storeOptions);
      // Approval requests too: one made on a replica is decided (CLI, web page) and used on any other.
      const approval = new redis.RedisApprovalStore(url, storeOptions);
      closers.push(rate, session, replay, approval);
      opts.stores = { rate, session, replay, approval };
      if (keyPair) {
        // Invalidations between replicas are signed; peers' public keys verify them.
        const peers = config.redis.peers !== undefined ? PublicKeyDirectory.fromFile(config.redis.peers) : keyPair.publicKeys();
        const bus = new redis.RedisInvalidationBus(url, {
          ...storeOptions,
          signer: redis.keyPairSigner(keyPair, mode),
          verifier: redis.keysVerifier(peers, mode),
        });
        closers.push(bus);
        opts.bus = bus;
      } else {
        log('[redis] without [keys]: rate limits and sessions are shared, but invalidations are not broadcast (they need signing keys)');
      }
    }
    let gate: Gate;
    try {
      gate = await Gate.fromFile(config.gate.policy, opts);
    } catch (err) {
      if (
        err instanceof PolicyError ||
        (err as NodeJS.ErrnoException).code === 'ENOENT' ||
        (err as NodeJS.ErrnoException).code === 'EACCES'
      ) {
        throw new ConfigError('gate.policy', `cannot load ${config.gate.policy}: ${(err as Error).message}`);
      }
      throw new ConfigError('gate', (err as Error).message);
    }
    let pins: ToolPins | undefined;
    if (config.tools.pinning) {
      pins = new ToolPins(config.tools.pinsFile, log);
      try {
        // Created now so the directory can be watched for approvals.
        await mkdir(dirname(config.tools.pinsFile), { recursive: true });
        await pins.load();
      } catch (err) {
        throw new ConfigError('tools.pins_file', `cannot read ${config.tools.pinsFile}: ${(err as Error).message}`);
      }
    }
    const core = new ProxyCore({
      config,
      gate,
      pins,
      outcomes,
      log,
      ...(telemetry
        ? {
            telemetry: (await import('../telemetry/proxy-telemetry.ts')).proxyTelemetry({
              meter: telemetry.meter,
              ...(telemetry.tracer ? { tracer: telemetry.tracer } : {}),
            }),
          }
        : {}),
    });

    /** The one reload path (file watcher and SIGHUP): a bad file keeps the previous set in force. */
    const reload = async (reason: string): Promise<void> => {
      try {
        await gate.reloadFile(config.gate.policy);
        log(`policy reloaded (${reason}): ${gate.policyCount} ${gate.policyCount === 1 ? 'policy' : 'policies'} in force`);
      } catch (err) {
        log(`policy reload (${reason}) failed, the previous policy set stays in force: ${(err as Error).message}`);
      }
      await core.refreshVisibility(true).catch((err: unknown) => log(`tool pins: ${String(err)}`));
    };
    const watchers = watchFiles(config, core, reload);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        for (const w of watchers) w.close();
        await core.close();
        await gate.close();
        for (const c of closers.reverse()) await Promise.resolve(c.close()).catch((err: unknown) => log(`close: ${String(err)}`));
      })());
    return { config, gate, core, reload, close };
  } catch (err) {
    for (const c of closers.reverse()) await Promise.resolve(c.close()).catch(() => undefined);
    throw err;
  }
}

/**
 * Watches the policy file (and the pin file) by directory, since editors and `mv` replace the
 * file rather than write it in place. Changes are debounced: one reload per burst of writes.
 */
function watchFiles(config: ProxyConfig, core: ProxyCore, reload: (reason: string) => Promise<void>): FSWatcher[] {
  const watchers: FSWatcher[] = [];
  const on = (file: string, what: string, action: () => Promise<void>): void => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const w = watch(dirname(file), { persistent: false }, (_event, name) => {
        // `..data` and friends: Kubernetes swaps a ConfigMap's files by renaming a symlink.
        if (name !== null && name !== basename(file) && !name.startsWith('..')) return;
        clearTimeout(timer);
        timer = setTimeout(() => void action().catch((err: unknown) => log(`${what}: ${String(err)}`)), 100);
      });
      w.on('error', (err) => log(`cannot watch ${file}: ${err.message}`));
      watchers.push(w);
    } catch (err) {
      log(`cannot watch ${file} (${(err as Error).message}); send SIGHUP to reload`);
    }
  };
  // Reload only when the text really changed: editors touch files several times per save.
  let lastText = readText(config.gate.policy);
  on(config.gate.policy, 'policy reload', async () => {
    const text = readText(config.gate.policy);
    if (text === undefined || text === lastText) return;
    lastText = text;
    await reload('file changed');
  });
  if (config.tools.pinning) on(config.tools.pinsFile, 'tool pins', () => core.refreshVisibility(true));
  return watchers;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // Mid-rename the file may be briefly missing: the next event reads it.
    return undefined;
  }
}
