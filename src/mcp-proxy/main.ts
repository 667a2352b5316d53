import { startApprovalChannels } from './approvals/channels.ts';
import { loadConfig } from './config.ts';
import { log, startRuntime } from './runtime.ts';
import { serveHttp } from './serve-http.ts';
import { serveStdio } from './serve-stdio.ts';

/**
 * `kavach mcp`: load the config, build the gate, serve until the client goes away or a signal
 * arrives, then shut down in order (sessions, upstreams, gate, audit log sealed last).
 * `http` is undefined for stdio, '' for the configured listen address, or HOST:PORT.
 */
export async function runProxy(opts: { configPath: string; http?: string | undefined }): Promise<number> {
  const config = await loadConfig(opts.configPath);
  const runtime = await startRuntime(config);
  // `kavach approvals` (socket) and the approvals page: a channel that cannot start is logged, not fatal.
  const channels = await startApprovalChannels(runtime, log);
  let finish!: (code: number) => void;
  const done = new Promise<number>((r) => (finish = r));
  let stopping = false;
  let closeServer: () => Promise<void> = async () => undefined;

  const stop = async (why: string, code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`shutting down (${why})`);
    const force = setTimeout(() => {
      log('shutdown took too long; exiting');
      process.exit(code || 1);
    }, 10_000);
    force.unref();
    try {
      await closeServer();
      await channels.close();
      await runtime.close();
    } catch (err) {
      log(`shutdown: ${String(err)}`);
    }
    finish(code);
  };

  // A rejected promise no one awaited is a defect to log, not a reason to end the proxy for every
  // client (Node's default); the two known paths to one are fixed, this is the second line.
  process.on('unhandledRejection', (reason) =>
    log(`internal error (unhandled rejection): ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`),
  );
  process.on('SIGHUP', () => void runtime.reload('SIGHUP'));
  process.once('SIGINT', () => void stop('SIGINT', 0));
  process.once('SIGTERM', () => void stop('SIGTERM', 0));

  try {
    if (opts.http !== undefined) {
      const handle = await serveHttp(runtime, opts.http || config.http?.listen || '127.0.0.1:8787');
      closeServer = () => handle.close();
    } else {
      await serveStdio(runtime, () => void stop('client closed the connection', 0));
    }
  } catch (err) {
    await channels.close().catch(() => undefined);
    await runtime.close().catch(() => undefined);
    throw err;
  }
  const code = await done;
  // Upstream children and timers are gone; leave nothing keeping the process alive.
  setImmediate(() => process.exit(code)).unref();
  return code;
}
