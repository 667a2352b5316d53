/**
 * The tool-definition scan (DESIGN §13): before a tool is pinned, everything of it the model may
 * read — name, title, description, annotations, input and output schemas (descriptions, enums,
 * defaults, property names) — and the server's instructions are searched for tool poisoning. Pure.
 */
import { fold, scanText, type RuleHit, type ToolFindingKind } from './tool-scan-rules.ts';

export { TOOL_FINDING_KINDS, type ToolFindingKind } from './tool-scan-rules.ts';

export interface ToolFinding {
  /** `tool`: `field` points into the tool definition; `server`: into the server's initialize result. */
  source: 'tool' | 'server';
  /**
   * JSON Pointer (`/inputSchema/properties/note/description`; `/instructions` for the server),
   * written with escapeText: a property name may itself hold the invisible characters.
   */
  field: string;
  /** The finding is in an object key there (a property name), not in its value. */
  key?: true;
  kind: ToolFindingKind;
  /** How many times this kind occurs in this field. */
  count: number;
  /**
   * The text around the first occurrence, with every control, invisible, bidi, tag and
   * non-printing character written as an escape (`\u200b`, `\x1b`), safe to print on a terminal.
   */
  excerpt: string;
}

/** Icons are images for the client's UI; their data URLs are not text the model reads. */
const SKIPPED = new Set(['/icons']);
const MAX_DEPTH = 64;
const EXCERPT_CONTEXT = 40;
const MAX_EXCERPT = 160;

/**
 * Findings for one tool (as `tools/list` gives it) and, when given, its server's `instructions`.
 * No finding: an empty array. A definition nested deeper than MAX_DEPTH is itself a finding.
 */
export function scanToolDefinition(tool: object, serverInstructions?: string): ToolFinding[] {
  const findings: ToolFinding[] = [];
  walk(tool, '', 0, findings);
  if (typeof serverInstructions === 'string') scanString(serverInstructions, 'server', '/instructions', false, findings);
  return findings;
}

function walk(value: unknown, path: string, depth: number, out: ToolFinding[]): void {
  if (SKIPPED.has(path)) return;
  if (typeof value === 'string') {
    scanString(value, 'tool', path, false, out);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (depth >= MAX_DEPTH) {
    out.push({
      source: 'tool',
      field: path,
      kind: 'hidden_instructions',
      count: 1,
      excerpt: `(nested deeper than ${MAX_DEPTH} levels: not read)`,
    });
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      walk(item, `${path}/${i}`, depth + 1, out);
    });
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const at = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    scanString(key, 'tool', at, true, out);
    walk(item, at, depth + 1, out);
  }
}

function scanString(text: string, source: 'tool' | 'server', field: string, key: boolean, out: ToolFinding[]): void {
  const hits = scanText(text);
  if (hits.length === 0) return;
  const byKind = new Map<ToolFindingKind, { first: RuleHit; count: number }>();
  for (const hit of hits) {
    const seen = byKind.get(hit.kind);
    if (seen) seen.count++;
    else byKind.set(hit.kind, { first: hit, count: 1 });
  }
  for (const [kind, { first, count }] of byKind) {
    const finding: ToolFinding = { source, field: escapeText(field), kind, count, excerpt: excerpt(text, first) };
    if (key) finding.key = true;
    out.push(finding);
  }
}

function excerpt(text: string, hit: RuleHit): string {
  const base = hit.folded ? fold(text) : text;
  const from = Math.max(0, hit.index - EXCERPT_CONTEXT);
  let to = Math.min(base.length, hit.index + hit.length + EXCERPT_CONTEXT);
  if (to - from > MAX_EXCERPT) to = from + MAX_EXCERPT; // a 10 kB blob is shown by its start
  const shown = escapeText(base.slice(from, to));
  const decoded =
    hit.decoded === undefined ? '' : ` (decodes to "${escapeText(hit.decoded.slice(0, 80))}${hit.decoded.length > 80 ? '…' : ''}")`;
  return `${from > 0 ? '…' : ''}${shown}${to < base.length ? '…' : ''}${decoded}`;
}

/**
 * Controls, format characters (zero-width, bidi, tags), private use, unassigned code points,
 * line/paragraph separators, spaces other than U+0020, variation selectors and fillers.
 */
// biome-ignore lint/suspicious/noMisleadingCharacterClass: each code point is matched alone on purpose (a lone combining mark is escaped)
const ESCAPED = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\u034F\u115F\u1160\u3164\uFFA0\uFE00-\uFE0F\u{E0100}-\u{E01EF}]|(?! )\p{Zs}/u;

/** Writes every character a terminal or a reader could be fooled by as an escape. */
export function escapeText(text: string): string {
  let out = '';
  for (const ch of text) {
    if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (!ESCAPED.test(ch)) out += ch;
    else {
      const cp = ch.codePointAt(0) as number;
      out +=
        cp < 0x100
          ? `\\x${cp.toString(16).padStart(2, '0')}`
          : cp > 0xffff
            ? `\\u{${cp.toString(16)}}`
            : `\\u${cp.toString(16).padStart(4, '0')}`;
    }
  }
  return out;
}
