/**
 * Edits a TOML file's tables in place so the rest of the file — other tables, comments, layout —
 * stays as its owner wrote it. smol-toml can only rewrite a whole document (losing comments), so
 * the edit is textual: the changed tables' sections are cut out and their new form appended. The
 * result is parsed again and must equal the intended document; when it does not (a table written
 * as dotted keys or inline, a header inside a multi-line string), the file is rewritten from its
 * parsed form instead, and the caller is told what was lost.
 */
import { isDeepStrictEqual } from 'node:util';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';

export interface TomlEdit {
  text: string;
  /** False when comments and layout could not be kept (the whole file was rewritten). */
  kept: boolean;
}

/**
 * `text` with the tables under `at` (e.g. `mcp_servers`) changed from `before` to `after`:
 * entries that differ are removed and, when still present in `after`, appended anew.
 */
export function editTomlTables(
  text: string,
  at: string,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  intended: Record<string, unknown>,
): TomlEdit {
  const changed = new Set<string>();
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (!isDeepStrictEqual(plain(before[name]), plain(after[name]))) changed.add(name);
  }
  if (changed.size === 0) return { text, kept: true };
  let edited = removeSections(text, (path) => path[0] === at && path.length >= 2 && changed.has(path[1] as string));
  const added: Record<string, unknown> = {};
  for (const name of changed) if (after[name] !== undefined) added[name] = after[name];
  if (Object.keys(added).length > 0) {
    edited = `${edited.replace(/\s*$/, '')}${edited.trim() === '' ? '' : '\n\n'}${stringifyToml({ [at]: added })}\n`;
  }
  if (sameDocument(edited, intended)) return { text: edited, kept: true };
  return { text: `${stringifyToml(intended)}\n`, kept: false };
}

/** Drops every section (header line up to the next header) whose header path `drop` accepts. */
function removeSections(text: string, drop: (path: readonly string[]) => boolean): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let dropping = false;
  for (const line of lines) {
    const path = headerPath(line);
    if (path !== undefined) dropping = drop(path);
    if (!dropping) out.push(line);
  }
  return out.join('\n');
}

/** The key path of a `[table]` or `[[array]]` header line, else undefined. */
function headerPath(line: string): string[] | undefined {
  if (!/^\s*\[/.test(line)) return undefined;
  let doc: unknown;
  try {
    doc = parseToml(line);
  } catch {
    return undefined;
  }
  const path: string[] = [];
  let node = doc;
  while (node !== null && typeof node === 'object') {
    const value: unknown = Array.isArray(node) ? node[0] : node;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) break;
    const keys = Object.keys(value);
    if (keys.length !== 1) break;
    path.push(keys[0] as string);
    node = (value as Record<string, unknown>)[keys[0] as string];
  }
  return path.length > 0 ? path : undefined;
}

function sameDocument(text: string, intended: Record<string, unknown>): boolean {
  try {
    return isDeepStrictEqual(plain(parseToml(text)), plain(intended));
  } catch {
    return false;
  }
}

/** Parsed TOML holds date objects; compare documents as the JSON they amount to. */
function plain(v: unknown): unknown {
  return v === undefined ? undefined : (JSON.parse(JSON.stringify(v)) as unknown);
}
