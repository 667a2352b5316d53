import { createHash } from 'node:crypto';

/** What Claude and most MCP clients accept as a tool name. */
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

export interface UpstreamName {
  server: string;
  /** The name the upstream knows (tool or prompt). */
  name: string;
}

/**
 * Maps upstream names to exposed `<server>__<name>` names. Invalid characters become `_`; a name
 * that is too long or collides is cut and suffixed with a hash of the original, so the mapping is
 * the same every run for the same set of names.
 */
export function exposeNames(items: readonly UpstreamName[]): Map<string, UpstreamName> {
  const sorted = [...items].sort((a, b) => (a.server === b.server ? cmp(a.name, b.name) : cmp(a.server, b.server)));
  const out = new Map<string, UpstreamName>();
  const pending: UpstreamName[] = [];
  for (const item of sorted) {
    const plain = `${item.server}__${item.name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
    const clean = plain === `${item.server}__${item.name}`;
    if (clean && TOOL_NAME.test(plain) && !out.has(plain)) out.set(plain, item);
    else pending.push(item);
  }
  // Second pass so an exact name always wins over a shortened one, whatever the order.
  for (const item of pending) {
    let salt = 0;
    let name: string;
    do {
      name = shortened(item, salt++);
    } while (out.has(name));
    out.set(name, item);
  }
  return out;
}

function shortened(item: UpstreamName, salt: number): string {
  const hash = createHash('sha256').update(`${item.server}\0${item.name}\0${salt}`).digest('hex').slice(0, 8);
  const body = `${item.server}__${item.name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
  return `${body.slice(0, 64 - 9)}_${hash}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
