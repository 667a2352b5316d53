import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { PrincipalConfig } from './config.ts';
import { PinWriteError, type HoldReason, type ToolHold, type ToolPins } from './pinning.ts';
import type { ToolFindingKind } from '../engine/screen/tool-scan.ts';
import type { ProxyShared } from './proxy-state.ts';
import { exposeNames, type UpstreamName } from './tool-names.ts';
import type { Upstream } from './upstream.ts';
import { couldBePermitted } from './visibility.ts';

/** A tool as the proxy exposes it: its exposed name, its server, its definition, and whether it is held back. */
export interface ExposedTool {
  exposed: string;
  upstream: Upstream;
  tool: Tool;
  action: string;
  /**
   * Held by the pin check until `kavach mcp approve-tools`: hidden, and calls refused
   * TOOL_CHANGED (changed, or new on a pinned server) or TOOL_SUSPECT (a scan finding).
   */
  held: ToolHold | undefined;
  /**
   * Why its pin is not durable (the pin file could not be written): hidden, and calls refused
   * UPSTREAM_UNAVAILABLE, until a later listing writes it.
   */
  unpinned: string | undefined;
}

/** What `kavach mcp check` shows of one tool. */
export interface ToolDescription {
  exposed: string;
  action: string;
  server: string;
  listed: boolean;
  /** Its definition differs from the approved one (held until approved). */
  changed: boolean;
  /** Held until approved: why, and the kinds of what the tool-definition scan found. */
  held?: { reason: HoldReason; findings: ToolFindingKind[] };
  /** Held back because its pin could not be written: why. */
  unpinned?: string;
}

/**
 * The tools the proxy exposes: every upstream's list, pin-checked (rug-pull protection), named
 * `<server>__<tool>`, and what each principal is shown of it.
 */
export class ToolCatalogue {
  private tools = new Map<string, ExposedTool>();
  /** Per upstream: the tool list the pin check last classified, the actions it held back, and why its pins are not durable (if so). */
  private readonly vetted = new Map<Upstream, { tools: Tool[]; held: ReadonlyMap<string, ToolHold>; unpinned: string | undefined }>();
  private readonly vetSeq = new Map<Upstream, number>();
  /** Pin checks under way, per upstream: its tools are not served until the verdict is in. */
  private readonly vetting = new Map<Upstream, Promise<void>>();
  private readonly visibleCache = new Map<string, Tool[]>();

  /** `relisted`: a listing changed what is exposed on its own (a pin written at last), so clients should list again. */
  constructor(
    private readonly shared: ProxyShared,
    private readonly pins: ToolPins | undefined,
    private readonly relisted: () => void,
  ) {}

  /** The tool exposed under `name` right now (no waiting). */
  get(name: string): ExposedTool | undefined {
    return this.tools.get(name);
  }

  /** The tool a call names, when it can be answered at once (else `resolve` waits). */
  settled(name: string): ExposedTool | undefined {
    const entry = this.tools.get(name);
    return entry && !this.vetting.has(entry.upstream) ? entry : undefined;
  }

  /**
   * The tool a call names, once an answer can be given: its server may still be starting, and a
   * server that just (re)started with new definitions is pin-checked first, so a rug-pulled tool
   * is never called under the definition that was approved before.
   */
  async resolve(name: string): Promise<ExposedTool | undefined> {
    const pool = this.shared.pool;
    let entry = this.tools.get(name);
    if (!entry && !pool.startupDone) {
      await pool.ready;
      entry = this.tools.get(name);
    }
    const vetting = entry && this.vetting.get(entry.upstream);
    if (vetting) {
      await vetting;
      entry = this.tools.get(name);
    }
    return entry;
  }

  /** The tools a principal is shown: none held back, and (unless `show_all`) only those a policy could permit. */
  async visibleTo(principal: PrincipalConfig): Promise<Tool[]> {
    await this.shared.pool.ready;
    this.retryUnpinned();
    if (this.vetting.size > 0) await Promise.all(this.vetting.values());
    const key = `${principal.principalKind}\0${principal.principalId}\0${principal.roles.join('\0')}`;
    let visible = this.visibleCache.get(key);
    if (visible) return visible;
    const policies = this.shared.gate.policies;
    const showAll = this.showAll();
    visible = [];
    for (const t of this.tools.values()) {
      if (t.held !== undefined || t.unpinned !== undefined) continue;
      if (!showAll && !couldBePermitted(policies, principal, t.action)) continue;
      visible.push({ ...t.tool, name: t.exposed });
    }
    if (this.visibleCache.size > 1000) this.visibleCache.clear();
    this.visibleCache.set(key, visible);
    return visible;
  }

  /** Every exposed tool with what a principal would see (for `kavach mcp check`). */
  async describe(principal: PrincipalConfig): Promise<ToolDescription[]> {
    await this.shared.pool.ready;
    // A server that came up just before may still be pin-checked (a first run writes the pins):
    // without waiting, its tools would be missing from what `check` says the client gets.
    if (this.vetting.size > 0) await Promise.all(this.vetting.values());
    const policies = this.shared.gate.policies;
    const showAll = this.showAll();
    return [...this.tools.values()].map((t) => {
      const d: ToolDescription = {
        exposed: t.exposed,
        action: t.action,
        server: t.upstream.name,
        changed: t.held?.reason === 'changed',
        listed: t.held === undefined && t.unpinned === undefined && (showAll || couldBePermitted(policies, principal, t.action)),
      };
      if (t.held !== undefined) d.held = { reason: t.held.reason, findings: [...new Set(t.held.findings.map((f) => f.kind))] };
      if (t.unpinned !== undefined) d.unpinned = t.unpinned;
      return d;
    });
  }

  /** The policies changed: what each principal is shown is computed afresh. */
  forgetVisibility(): void {
    this.visibleCache.clear();
  }

  /**
   * The pin file changed (an approval): read it again and re-check the tools of every upstream
   * that has listed them. One still starting is checked when its list comes: checked now, its
   * empty list would pin the server as having no tools, and hold every tool it then lists as new.
   */
  async reloadPins(): Promise<void> {
    if (!this.pins) return;
    await this.pins.load();
    await Promise.all(this.shared.pool.upstreams.filter((u) => this.vetted.has(u) || this.vetting.has(u)).map((u) => this.vet(u)));
  }

  /**
   * Pin-checks the upstream's current tool list; only then do those tools become the exposed
   * ones. A check overtaken by a newer list is dropped, so a slow check of an old list never
   * undoes the verdict on a newer one (a rug pull sent right behind a harmless change).
   */
  vet(u: Upstream): Promise<void> {
    const done = this.vetNow(u).finally(() => {
      if (this.vetting.get(u) === done) this.vetting.delete(u);
    });
    this.vetting.set(u, done);
    return done;
  }

  private async vetNow(u: Upstream): Promise<void> {
    // Never listed since the proxy started: nothing to check; it shows its pinned tools (a
    // re-check after an approval must not hide them). Its empty list is never pin-checked: that
    // would pin the server as having no tools, and hold every tool it then lists as new.
    if (!u.everReady) {
      this.showPinned(u);
      return;
    }
    const seq = (this.vetSeq.get(u) ?? 0) + 1;
    this.vetSeq.set(u, seq);
    const tools = unambiguous(u.tools, (name) => this.shared.log(`upstream ${u.name}: lists tool '${name}' more than once; hiding it`));
    let held: ReadonlyMap<string, ToolHold> = new Map();
    let unpinned: string | undefined;
    if (this.pins) {
      try {
        held = await this.pins.check(u.name, tools, u.instructions);
      } catch (err) {
        if (err instanceof PinWriteError) {
          // Fail closed: a pin that is not on disk protects nothing at the next start, which would
          // trust whatever the server shows then. Its tools wait until the pin file takes it.
          unpinned = `the tool pins of server '${u.name}' could not be saved to ${err.path} (${err.detail}); its tools are refused until the pin file can be written`;
          this.shared.log(`pinning: ${err.message}; holding back the tools of ${u.name} until the next listing writes it`);
        } else {
          // Fail closed: if pins cannot be checked, hold back every tool of this server.
          this.shared.log(`pinning: ${String(err)}; holding back the tools of ${u.name}`);
          held = new Map(tools.map((t) => [`${u.name}.${t.name}`, { reason: 'changed', findings: [] }]));
        }
      }
    }
    if (this.vetSeq.get(u) !== seq) return;
    this.vetted.set(u, { tools, held, unpinned });
    this.rebuild();
  }

  /**
   * A server that has not come up since the proxy started (a missing command, a crash at start)
   * shows the tools it had when they were pinned, so a call to one is answered UPSTREAM_UNAVAILABLE
   * with the reason rather than "Unknown tool", until its own listing replaces them. Whether it did.
   */
  showPinned(u: Upstream): boolean {
    if (!this.pins || u.everReady) return false;
    const tools = this.pins.pinnedOf(u.name) as Tool[];
    if (tools.length === 0) return false;
    // A check of an earlier (empty) list still under way must not undo this.
    this.vetSeq.set(u, (this.vetSeq.get(u) ?? 0) + 1);
    this.vetted.set(u, { tools, held: new Map(), unpinned: undefined });
    this.rebuild();
    return true;
  }

  /** A listing tries again to write the pins a check could not: until then the tools are held back. */
  private retryUnpinned(): void {
    for (const [u, vetted] of this.vetted) {
      if (vetted.unpinned === undefined || this.vetting.has(u)) continue;
      void this.vet(u).then(() => {
        if (this.vetted.get(u)?.unpinned === undefined) this.relisted();
      });
    }
  }

  private rebuild(): void {
    const names: UpstreamName[] = [];
    const byKey = new Map<string, { u: Upstream; tool: Tool; held: ToolHold | undefined; unpinned: string | undefined }>();
    for (const u of this.shared.pool.upstreams) {
      const vetted = this.vetted.get(u);
      if (!vetted) continue;
      for (const tool of vetted.tools) {
        names.push({ server: u.name, name: tool.name });
        byKey.set(`${u.name}\0${tool.name}`, { u, tool, held: vetted.held.get(`${u.name}.${tool.name}`), unpinned: vetted.unpinned });
      }
    }
    const next = new Map<string, ExposedTool>();
    for (const [exposed, n] of exposeNames(names)) {
      const found = byKey.get(`${n.server}\0${n.name}`);
      if (!found) continue;
      next.set(exposed, {
        exposed,
        upstream: found.u,
        tool: found.tool,
        action: `${n.server}.${n.name}`,
        held: found.held,
        unpinned: found.unpinned,
      });
    }
    this.tools = next;
    this.visibleCache.clear();
  }

  private showAll(): boolean {
    return this.shared.config.tools.showAll || this.shared.config.gate.observeOnly;
  }
}

/** A tool name listed twice is ambiguous (which definition would run?): neither is exposed. */
function unambiguous(tools: readonly Tool[], onDuplicate: (name: string) => void): Tool[] {
  const count = new Map<string, number>();
  for (const t of tools) count.set(t.name, (count.get(t.name) ?? 0) + 1);
  const out: Tool[] = [];
  for (const t of tools) {
    const n = count.get(t.name) as number;
    if (n === 1) out.push(t);
    else if (n > 1) {
      onDuplicate(t.name);
      count.set(t.name, 0);
    }
  }
  return out;
}
