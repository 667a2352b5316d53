import { ConfigError } from '../engine/errors.ts';
import { installToolCallFastPath } from './fast-path.ts';
import { LineServerTransport } from './line-transport.ts';
import type { ProxyRuntime } from './runtime.ts';
import { createSession } from './session.ts';

/** Serves one client over stdin/stdout (what Claude Desktop, Cursor, Claude Code and VS Code spawn). */
export async function serveStdio(runtime: ProxyRuntime, onClosed: () => void): Promise<void> {
  const identity = runtime.config.identity;
  if (!identity) throw new ConfigError('identity', 'stdio mode needs [identity] (the principal behind this client)');
  const session = createSession(runtime.core, identity, { startUpstreamsOnInit: true });
  session.transport = 'pipe';
  runtime.core.addSession(session);
  const transport = new LineServerTransport(process.stdin, process.stdout);
  session.server.onclose = () => {
    runtime.core.removeSession(session);
    onClosed();
  };
  await session.server.connect(transport);
  installToolCallFastPath(transport, runtime.core, session, () => runtime.core.startUpstreams(session.server.getClientCapabilities()));
  // The client closing stdin is how stdio sessions end; a client that vanished shows up as
  // EPIPE on stdout instead, which must end the session cleanly too (the audit log gets sealed).
  process.stdin.once('end', () => void session.server.close());
  process.stdout.on('error', () => void session.server.close());
}
