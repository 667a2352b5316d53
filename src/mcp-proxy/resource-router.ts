import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import { ErrorCode, McpError, ReadResourceResultSchema, type Resource, type ResourceTemplate } from '@modelcontextprotocol/sdk/types.js';
import type { PrincipalConfig } from './config.ts';
import { gateRequest, listFilter } from './gated-request.ts';
import { ListingScreen } from './listing-scan.ts';
import { encodable, listAllPages } from './listing.ts';
import { relayed } from './meta.ts';
import type { ProxySession, ProxyShared } from './proxy-state.ts';
import { screenedRequest } from './screening.ts';
import type { Upstream } from './upstream.ts';

/** Gated reads of URIs no server listed re-list the resource servers at most this often. */
const OWNER_RELIST_MS = 2_000;

export type UpstreamClient = NonNullable<Upstream['client']>;

/**
 * Resources of every upstream as one list, and which upstream a URI (or a template) belongs to:
 * the one that listed it first in config order. With `gate_resources` a read goes to that one
 * owner only, after the gate said yes for it.
 */
export class ResourceRouter {
  private resourceOwners = new Map<string, Upstream>();
  private templateOwners = new Map<string, Upstream>();
  private ownerRelisting: Promise<void> | undefined;
  private ownerRelistedAt = -Infinity;
  /** The scan of what resources and templates say of themselves (listing-scan.ts). */
  private readonly listings: ListingScreen;

  constructor(private readonly shared: ProxyShared) {
    this.listings = new ListingScreen((message) => shared.log(message));
  }

  /** The server that listed a URI or a template, if one did (for completions). */
  listedOwner(uriOrTemplate: string): Upstream | undefined {
    return this.templateOwners.get(uriOrTemplate) ?? this.resourceOwners.get(uriOrTemplate);
  }

  /** With `gate_resources`, only the resources the principal could be permitted to read. */
  async list(principal?: PrincipalConfig): Promise<Resource[]> {
    await this.shared.pool.ready;
    const servers = this.shared.pool.resourceServers();
    // Asked together, merged in config order: which server owns a URI that two of them list must
    // not depend on which answered first (a hostile server would answer fast to take the reads).
    const lists = await Promise.all(
      servers.map(async (u) => {
        const client = u.client;
        if (!client) return [];
        try {
          const resources = await listAllPages(
            (cursor) =>
              client.listResources(cursor === undefined ? {} : { cursor }).then((p) => ({ items: p.resources, nextCursor: p.nextCursor })),
            50_000,
          );
          const passable = encodable(resources, (r) =>
            this.shared.log(`upstream ${u.name}: resource '${r.uri.slice(0, 200)}' is nested too deep to pass on; hiding it`),
          );
          return this.listings.screen(u.name, 'resource', passable, (r) => r.uri);
        } catch (err) {
          this.shared.log(`upstream ${u.name}: resources/list failed: ${(err as Error).message}`);
          return [];
        }
      }),
    );
    const all: Resource[] = [];
    const owners = new Map<string, Upstream>();
    servers.forEach((u, i) => {
      for (const r of lists[i] ?? []) {
        if (!owners.has(r.uri)) owners.set(r.uri, u);
        all.push(r);
      }
    });
    this.resourceOwners = owners;
    const filter = principal && listFilter(this.shared, principal);
    if (!filter) return all;
    // A URI listed twice is read from its first owner, so that owner's action decides.
    return all.filter((r) => filter(`${(owners.get(r.uri) as Upstream).name}.resources/read`, r.uri));
  }

  async listTemplates(principal?: PrincipalConfig): Promise<ResourceTemplate[]> {
    await this.shared.pool.ready;
    const servers = this.shared.pool.resourceServers();
    const lists = await Promise.all(
      servers.map(async (u) => {
        try {
          const templates = (await u.client?.listResourceTemplates())?.resourceTemplates ?? [];
          const passable = encodable(templates, (t) =>
            this.shared.log(
              `upstream ${u.name}: resource template '${t.uriTemplate.slice(0, 200)}' is nested too deep to pass on; hiding it`,
            ),
          );
          return this.listings.screen(u.name, 'resource template', passable, (t) => t.uriTemplate);
        } catch (err) {
          this.shared.log(`upstream ${u.name}: resources/templates/list failed: ${(err as Error).message}`);
          return [];
        }
      }),
    );
    // In config order, like resources: a template two servers list belongs to the first.
    const all: { t: ResourceTemplate; u: Upstream }[] = [];
    const owners = new Map<string, Upstream>();
    servers.forEach((u, i) => {
      for (const t of lists[i] ?? []) {
        if (!owners.has(t.uriTemplate)) owners.set(t.uriTemplate, u);
        all.push({ t, u });
      }
    });
    this.templateOwners = owners;
    const filter = principal && listFilter(this.shared, principal);
    // A template is not a URI: its `resource` conditions are assumed satisfiable.
    return all.filter(({ u }) => !filter || filter(`${u.name}.resources/read`)).map(({ t }) => t);
  }

  /** Routes by URI: the upstream that listed it, else each resource server in turn. */
  async read(
    session: ProxySession,
    params: { uri: string; _meta?: Record<string, unknown> },
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    await this.shared.pool.ready;
    if (!this.shared.config.gate.gateResources) {
      return relayed(params, undefined, (forwarded) =>
        this.byUri(params.uri, (client) =>
          client.request({ method: 'resources/read', params: forwarded }, ReadResourceResultSchema, { signal }),
        ),
      );
    }
    // Gated: the read goes to one known owner only, after the gate said yes for that owner.
    const owner = await this.ownerOf(params.uri);
    const verdict = await gateRequest(this.shared, session, owner.name, 'resources/read', params.uri, { uri: params.uri });
    const client = this.shared.pool.clientOf(owner);
    // What was read is screened (DESIGN §13) under the action the gate judged.
    return screenedRequest(this.shared.gate, `${owner.name}.resources/read`, verdict.evaluationId, 'the resource read', () =>
      relayed(params, verdict, (forwarded) =>
        client.request({ method: 'resources/read', params: forwarded }, ReadResourceResultSchema, { signal }),
      ),
    );
  }

  /**
   * The one upstream a URI belongs to, for the gate: listed, else matched by exactly one server's
   * templates, else the only resource server. Anything else is refused rather than tried in turn
   * (trying would read from servers the gate never judged).
   */
  async ownerOf(uri: string): Promise<Upstream> {
    let owner = this.resourceOwners.get(uri);
    if (owner) return owner;
    await this.relistOwners();
    owner = this.resourceOwners.get(uri);
    if (owner) return owner;
    const matching = new Set<Upstream>();
    for (const [template, u] of this.templateOwners) {
      try {
        if (new UriTemplate(template).match(uri)) matching.add(u);
      } catch {
        // A malformed template owns nothing.
      }
    }
    const servers = this.shared.pool.resourceServers();
    const only = matching.size === 1 ? [...matching][0] : matching.size === 0 && servers.length === 1 ? servers[0] : undefined;
    if (only) return only;
    throw new McpError(
      ErrorCode.InvalidParams,
      `Resource not found: ${uri} (${matching.size > 1 ? 'several servers' : 'no server'} claim it, so it cannot be gated)`,
    );
  }

  /** Ungated: the upstream that listed the URI, else each resource server in turn until one answers. */
  async byUri<T>(uri: string, run: (client: UpstreamClient) => Promise<T>): Promise<T> {
    const pool = this.shared.pool;
    const owner = this.resourceOwners.get(uri);
    if (owner) return run(pool.clientOf(owner));
    let last: unknown;
    for (const u of pool.resourceServers()) {
      try {
        return await run(pool.clientOf(u));
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof Error ? last : new McpError(ErrorCode.InvalidParams, `Resource not found: ${uri}`);
  }

  /**
   * Re-lists resources and templates for `ownerOf`: one listing at a time, at most once per
   * OWNER_RELIST_MS. Otherwise each read of an unlisted URI (cheap for a client) would cost a full
   * listing of every resource server. Meanwhile the last listing decides, as it would anyway.
   */
  private relistOwners(): Promise<void> {
    if (this.ownerRelisting) return this.ownerRelisting;
    if (performance.now() - this.ownerRelistedAt < OWNER_RELIST_MS) return Promise.resolve();
    this.ownerRelisting = Promise.all([this.list(), this.listTemplates()])
      .then(() => undefined)
      .finally(() => {
        this.ownerRelistedAt = performance.now();
        this.ownerRelisting = undefined;
      });
    return this.ownerRelisting;
  }
}
