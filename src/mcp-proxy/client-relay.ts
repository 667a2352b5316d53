import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  ListRootsResultSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import type { ProxySession, ProxyShared } from './proxy-state.ts';
import { screenedServerMessage } from './screening.ts';
import type { Upstream } from './upstream.ts';

/** Server→client requests (sampling, elicitation, roots) go to the latest client able to answer. */
export class ClientRelay {
  private latest: ProxySession | undefined;

  constructor(private readonly shared: ProxyShared) {}

  sessionAdded(session: ProxySession): void {
    this.latest = session;
  }

  sessionClosed(session: ProxySession): void {
    if (this.latest === session) this.latest = [...this.shared.sessions].at(-1);
  }

  async relay(
    upstream: Upstream,
    request: { method: string; params?: Record<string, unknown> },
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const cap =
      request.method === 'sampling/createMessage' ? 'sampling' : request.method === 'elicitation/create' ? 'elicitation' : 'roots';
    // What the client's model or user is to read is screened as the server's tool results are.
    if (cap !== 'roots' && request.params !== undefined) {
      const method = cap === 'sampling' ? 'sampling/createMessage' : 'elicitation/create';
      const screened = screenedServerMessage(this.shared, upstream.name, method, request.params);
      if (screened.withheld) {
        const reason = `the server's ${method} request was withheld by a [[screen]]: it was not passed on to the client`;
        throw new McpError(ErrorCode.InvalidRequest, reason);
      }
      request = { ...request, params: screened.value };
    }
    const candidates = [this.latest, ...this.shared.sessions].filter(
      (s): s is ProxySession => s !== undefined && Boolean(s.server.getClientCapabilities()?.[cap]),
    );
    const session = candidates[0];
    if (!session) throw new McpError(ErrorCode.MethodNotFound, `no connected client supports ${cap}`);
    const schema = cap === 'sampling' ? CreateMessageResultSchema : cap === 'elicitation' ? ElicitResultSchema : ListRootsResultSchema;
    return session.server.request(request as never, schema, { signal, timeout: this.shared.config.tools.callTimeoutMs }) as Promise<
      Record<string, unknown>
    >;
  }
}
