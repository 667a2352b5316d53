import type { ProxySession } from './proxy-state.ts';

export type ListKind = 'tools' | 'prompts' | 'resources';

/** list_changed notifications to every session, coalesced: one per kind per tick, not one per upstream event. */
export class ChangeNotices {
  private readonly due: Record<ListKind, boolean> = { tools: false, prompts: false, resources: false };
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly sessions: ReadonlySet<ProxySession>) {}

  schedule(what: ListKind): void {
    this.due[what] = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const n = { ...this.due };
      this.due.tools = this.due.prompts = this.due.resources = false;
      for (const s of this.sessions) {
        if (n.tools) void s.server.sendToolListChanged().catch(() => undefined);
        if (n.prompts) void s.server.sendPromptListChanged().catch(() => undefined);
        if (n.resources) void s.server.sendResourceListChanged().catch(() => undefined);
      }
    }, 20);
    this.timer.unref();
  }

  close(): void {
    clearTimeout(this.timer);
  }
}
