/** Most pages one listing follows; past it, what was listed so far is the list. */
export const MAX_LIST_PAGES = 100;

/**
 * Follows a paginated listing to its end, bounded: a server whose cursor never ends (it repeats
 * one, or always hands out a new one with empty pages) would otherwise keep the proxy asking
 * forever, and every client waiting on the listing with it.
 */
export async function listAllPages<T>(
  fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>,
  maxItems: number,
): Promise<T[]> {
  const items: T[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let pages = 0; pages < MAX_LIST_PAGES; pages++) {
    const page = await fetchPage(cursor);
    items.push(...page.items);
    cursor = page.nextCursor;
    if (cursor === undefined || seen.has(cursor) || items.length >= maxItems) break;
    seen.add(cursor);
  }
  return items;
}

/**
 * The entries of an upstream's list that can be passed on: JSON.parse takes nesting that
 * JSON.stringify cannot, and one such entry would fail the whole merged list for every client.
 */
export function encodable<T>(items: T[], onDropped: (item: T) => void): T[] {
  let out: T[] | undefined;
  for (let i = 0; i < items.length; i++) {
    try {
      JSON.stringify(items[i]);
    } catch {
      out ??= items.slice(0, i);
      onDropped(items[i] as T);
      continue;
    }
    out?.push(items[i] as T);
  }
  return out ?? items;
}
