import { ErrorCode, McpError, type ResourceUpdatedNotification } from '@modelcontextprotocol/sdk/types.js';
import { gateRequest } from './gated-request.ts';
import { fromUpstream } from './meta.ts';
import type { ProxySession, ProxyShared } from './proxy-state.ts';
import type { ResourceRouter } from './resource-router.ts';
import type { Upstream } from './upstream.ts';
import { couldBePermitted } from './visibility.ts';

/**
 * Resource subscriptions: the upstream holds one subscription per URI while at least one session
 * is subscribed, and its updates go to those sessions only.
 */
export class Subscriptions {
  /** Downstream sessions subscribed to each resource URI (the upstream holds one subscription). */
  private readonly subscribers = new Map<string, Set<ProxySession>>();
  /** With `gate_resources`: the upstream each subscribed URI was judged as belonging to, and subscribed on. */
  private readonly owners = new Map<string, Upstream>();

  constructor(
    private readonly shared: ProxyShared,
    private readonly router: ResourceRouter,
  ) {}

  /** An upstream's `notifications/resources/updated`, to the sessions subscribed to that URI. */
  updated(params: ResourceUpdatedNotification['params']): void {
    for (const s of this.subscribers.get(params.uri) ?? []) void s.server.sendResourceUpdated(params).catch(() => undefined);
  }

  /** `caller` is the session as of this request (HTTP: its address), for the gate. */
  async subscribe(session: ProxySession, uri: string, caller: ProxySession = session): Promise<void> {
    const { config } = this.shared;
    const policies = this.shared.gate.policies;
    let owner: Upstream | undefined;
    if (config.gate.gateResources) {
      owner = await this.router.ownerOf(uri);
      await gateRequest(this.shared, caller, owner.name, 'resources/subscribe', uri, { uri });
    }
    // Joined at once, before the upstream answers, so that a concurrent subscribe or unsubscribe
    // of the same URI sees this session (and neither drops it nor unsubscribes the upstream).
    const first = !this.subscribers.get(uri)?.size;
    const sessions = this.subscribers.get(uri) ?? new Set<ProxySession>();
    sessions.add(session);
    this.subscribers.set(uri, sessions);
    if (first) {
      if (owner) this.owners.set(uri, owner);
      try {
        await fromUpstream(
          owner
            ? this.shared.pool.clientOf(owner).subscribeResource({ uri })
            : this.router.byUri(uri, (client) => client.subscribeResource({ uri })),
        );
      } catch (err) {
        if (sessions.delete(session) && sessions.size === 0 && this.subscribers.get(uri) === sessions) {
          this.subscribers.delete(uri);
          this.owners.delete(uri);
        }
        throw err;
      }
      // Every session left while the upstream was subscribing (a reload dropped them, they
      // unsubscribed, they went away): their unsubscribe may have reached it before this.
      if (!this.subscribers.get(uri)?.size) await this.unsubscribeUpstream(uri, owner).catch(() => undefined);
    }
    // A reload while this request was in flight did not see this subscription.
    const gate = this.shared.gate;
    if (
      owner &&
      gate.policies !== policies &&
      !config.gate.observeOnly &&
      !couldBePermitted(gate.policies, caller.principal, `${owner.name}.resources/subscribe`, uri)
    ) {
      await this.unsubscribe(session, uri);
      throw new McpError(
        ErrorCode.InvalidRequest,
        `the policies were reloaded while subscribing to ${uri.slice(0, 200)}, and refuse it now`,
      );
    }
  }

  async unsubscribe(session: ProxySession, uri: string): Promise<void> {
    const sessions = this.subscribers.get(uri);
    if (!sessions?.delete(session) || sessions.size > 0) return;
    this.subscribers.delete(uri);
    const owner = this.owners.get(uri);
    this.owners.delete(uri);
    await this.unsubscribeUpstream(uri, owner);
  }

  /** A session went away: it holds no subscription any more. */
  sessionClosed(session: ProxySession): void {
    for (const uri of [...this.subscribers.keys()]) void this.unsubscribe(session, uri).catch(() => undefined);
  }

  /**
   * After a policy reload: a gated subscription the new policies could never permit (on who is
   * asking, the action and the URI) is dropped, and the upstream unsubscribed once no session holds
   * it. Conditions on time, rate or address were judged when the client subscribed; a reload does
   * not evaluate them again (that would charge limits and write verdicts for requests nobody made).
   */
  dropRefused(): void {
    const { config } = this.shared;
    if (!config.gate.gateResources || config.gate.observeOnly) return;
    const policies = this.shared.gate.policies;
    for (const [uri, sessions] of this.subscribers) {
      const owner = this.owners.get(uri);
      if (!owner) continue;
      for (const s of [...sessions]) {
        if (couldBePermitted(policies, s.principal, `${owner.name}.resources/subscribe`, uri)) continue;
        this.shared.log(
          `policy reload: ${s.principal.principalId} may no longer subscribe to ${uri.slice(0, 200)}; its subscription is dropped`,
        );
        this.unsubscribe(s, uri).catch((err: unknown) =>
          this.shared.log(`upstream ${owner.name}: resources/unsubscribe failed: ${String(err)}`),
        );
      }
    }
  }

  private async unsubscribeUpstream(uri: string, owner: Upstream | undefined): Promise<unknown> {
    return fromUpstream(
      owner
        ? this.shared.pool.clientOf(owner).unsubscribeResource({ uri })
        : this.router.byUri(uri, (client) => client.unsubscribeResource({ uri })),
    );
  }
}
