/**
 * Result screening (DESIGN §13): what a tool hands back is searched for secrets before the model
 * sees it. Pure: no I/O, no clock; the caller records the findings and turns a block into a refusal.
 */
import type { OutputBlockedVerdict } from '../verdict.ts';
import { decodedText, encodedRuns, MAX_DECODED_CHARS, MIN_ENCODED_RUN } from './encoded.ts';
import { foldForDetection } from './fold.ts';
import type { Span } from './detector.ts';
import type { PlannedDetector, ScreenPlan, ScreenSet } from './screen-set.ts';

/** Where a detector found something. Never the value: the audit log may keep these forever. */
export interface ScreenFinding {
  screen: string;
  /** A built-in detector's name, a custom pattern's name, or `unscreenable`. */
  detector: string;
  /**
   * JSON Pointer into the output of the string (or number, or key) that held the matches. A text
   * that was itself JSON is walked as JSON: the pointer then continues into that text's document
   * (`/content/0/text/aws/secret`).
   */
  path: string;
  count: number;
}

/** Why a result must be withheld. The caller refuses it (the proxy: OUTPUT_BLOCKED). */
export interface ScreenBlock {
  /** The block-mode screens that matched (every enforcing screen, when unscreenable). */
  screens: string[];
  detectors: string[];
  /** What kind of things were found, for the model: "an AWS access key ID". */
  kinds: string[];
  /**
   * The output could not be screened (a cycle, nesting deeper than MAX_DEPTH, a Map or Set, a
   * getter that throws): withheld rather than passed on unread.
   */
  unscreenable?: true;
}

export interface ScreenResult<T> {
  /**
   * The output with redactions applied, or the very same object when nothing was redacted. A
   * redacted number becomes the string `[REDACTED:<detector>]`.
   */
  output: T;
  findings: readonly ScreenFinding[];
  blocked?: ScreenBlock;
}

export const MAX_DEPTH = 256;
const NO_FINDINGS: readonly ScreenFinding[] = Object.freeze([]);
/** No built-in detector matches fewer characters (`a@b.io`). */
const SHORTEST_MATCH = 6;
/** Numbers smaller than this have fewer than 13 digits: no detector looks at them. */
const SCREENED_NUMBER = 1e12;

interface Hit {
  planned: PlannedDetector;
  spans: Span[];
}

interface Entry {
  planned: PlannedDetector | undefined; // undefined: the output could not be screened here
  path: string;
  count: number;
}

class Unscreenable extends Error {}

/**
 * Screens `output` (an MCP CallToolResult or any value a tool returned) with the screens that
 * apply to `ctx.actionName`. With no such screen it returns at once. Never throws.
 */
export function screenOutput<T>(screens: ScreenSet, ctx: { readonly actionName: string }, output: T): ScreenResult<T> {
  const plan = screens.planFor(ctx.actionName);
  if (plan === undefined) return { output, findings: NO_FINDINGS };
  const walk = new Walk(plan);
  let screened: unknown;
  try {
    screened = walk.value(output, 0);
  } catch {
    // A cycle, nesting too deep, a Map, a throwing getter or proxy: not read in full, so not
    // passed on as if it had been (the path says where the walk stopped).
    walk.log.push({ planned: undefined, path: walk.pointer(), count: 1 });
    screened = output;
  }
  return conclude(plan, walk.log, screened as T);
}

/** The model-facing reason a result was withheld: what kind of thing, never the value. `what` names the result. */
export function describeWithheld(blocked: ScreenBlock, what = "the tool's result"): string {
  const screens = blocked.screens.map((s) => `'${s}'`).join(', ');
  if (blocked.unscreenable) return `${what} was withheld: it could not be screened for secrets (screen ${screens})`;
  return `${what} was withheld: it contained ${listOf(blocked.kinds)} (screen ${screens})`;
}

/** The refusal the model gets instead of a withheld result, under the permitted call's evaluation id. */
export function outputBlocked(evaluationId: string, blocked: ScreenBlock, what?: string): OutputBlockedVerdict {
  return { kind: 'refuse', evaluationId, code: 'OUTPUT_BLOCKED', evaluator: 'screen', reason: describeWithheld(blocked, what) };
}

/** Findings one audit record keeps; the rest of a long list is dropped. */
export const MAX_RECORDED_FINDINGS = 256;
/** The longest finding path an audit record keeps (a pointer into a huge document is cut). */
const MAX_RECORDED_PATH = 1024;

/** The findings as an audit record takes them: bounded in number and path length (plain copies). */
export function recordedFindings(found: readonly ScreenFinding[]): ScreenFinding[] {
  const out: ScreenFinding[] = [];
  for (const f of found.slice(0, MAX_RECORDED_FINDINGS)) {
    const path = f.path.length > MAX_RECORDED_PATH ? `${f.path.slice(0, MAX_RECORDED_PATH)}…` : f.path;
    out.push({ screen: f.screen, detector: f.detector, path, count: f.count });
  }
  return out;
}

function listOf(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function conclude<T>(plan: ScreenPlan, log: readonly Entry[], output: T): ScreenResult<T> {
  if (log.length === 0) return { output, findings: NO_FINDINGS };
  const findings = new Map<string, ScreenFinding>();
  const add = (screen: string, detector: string, path: string, count: number) => {
    const key = `${screen}\u0000${detector}\u0000${path}`;
    const found = findings.get(key);
    if (found) found.count += count;
    else findings.set(key, { screen, detector, path, count });
  };
  const blocking = new Set<string>();
  const detectors = new Set<string>();
  const kinds = new Set<string>();
  let unscreenable = false;
  for (const { planned, path, count } of log) {
    if (!planned) {
      unscreenable = true;
      for (const screen of plan.screens) add(screen.name, 'unscreenable', path, count);
      continue;
    }
    for (const screen of planned.screens) add(screen.name, planned.detector.name, path, count);
    if (planned.block) {
      for (const screen of planned.screens) if (screen.mode === 'block') blocking.add(screen.name);
      detectors.add(planned.detector.name);
      kinds.add(planned.detector.label);
    }
  }
  const result: ScreenResult<T> = { output, findings: [...findings.values()] };
  if (unscreenable && plan.enforcing) {
    result.blocked = {
      screens: plan.screens.filter((s) => s.mode !== 'report').map((s) => s.name),
      detectors: ['unscreenable'],
      kinds: [],
      unscreenable: true,
    };
  } else if (blocking.size > 0) {
    result.blocked = { screens: [...blocking], detectors: [...detectors], kinds: [...kinds] };
  }
  return result;
}

/** One screening pass: copy-on-write, so an untouched subtree is returned as the same object. */
class Walk {
  readonly log: Entry[] = [];
  private readonly steps: (string | number)[] = [];
  private readonly ancestors = new Set<object>();
  /** The `type` of the content block last entered: its `resource` is contents only in an embedded resource. */
  private blockType: unknown;
  /** What the last anchors pass saw of characters to fold; undefined when no pass looked. */
  private sawFoldable: boolean | undefined;
  /** How many texts holding JSON the walk is inside: their documents have no MCP content positions. */
  private inJson = 0;

  constructor(private readonly plan: ScreenPlan) {}

  pointer(): string {
    let out = '';
    for (const step of this.steps) out += `/${typeof step === 'number' ? step : step.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    return out;
  }

  value(value: unknown, depth: number): unknown {
    switch (typeof value) {
      case 'string':
        return this.string(value, depth);
      case 'number':
        return Number.isFinite(value) && Math.abs(value) >= SCREENED_NUMBER ? this.scalar(value, String(value)) : value;
      case 'bigint':
        return this.scalar(value, String(value));
      case 'object':
        return value === null ? value : this.object(value, depth);
      default:
        return value; // boolean, undefined, function, symbol: no text to leak
    }
  }

  /** A number's digits are screened as text; a redacted number is replaced by the label. */
  private scalar(value: number | bigint, text: string): unknown {
    const hits = this.scan(text);
    if (!hits) return value;
    const redacted = this.apply(text, hits);
    return redacted === text ? value : redacted;
  }

  private object(value: object, depth: number): unknown {
    if (depth >= MAX_DEPTH || this.ancestors.has(value)) throw new Unscreenable();
    if (value instanceof Map || value instanceof Set || value instanceof WeakMap || value instanceof WeakSet) throw new Unscreenable();
    // Binary (ArrayBuffer, typed arrays, Buffer) and dates hold no text to screen.
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value) || value instanceof Date || value instanceof RegExp) return value;
    this.ancestors.add(value);
    try {
      return Array.isArray(value) ? this.array(value, depth) : this.record(value as Record<string, unknown>, depth);
    } finally {
      this.ancestors.delete(value);
    }
  }

  private array(value: unknown[], depth: number): unknown {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      this.steps.push(i);
      const next = this.value(item, depth + 1);
      this.steps.pop();
      if (next !== item) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }

  private record(value: Record<string, unknown>, depth: number): unknown {
    const binaryKey = this.binaryKey(value);
    const keys = Object.keys(value);
    let changes: Map<string, { key: string; value: unknown }> | undefined;
    for (const key of keys) {
      if (key === binaryKey) continue;
      const item = value[key];
      // A key is text the model reads too (a map from token to user, say). The path names the key
      // with every match masked, whatever the mode: a finding never carries the value.
      const keyHits = this.scan(key);
      this.steps.push(keyHits ? this.masked(key, keyHits) : key);
      const nextKey = keyHits ? this.apply(key, keyHits) : key;
      const next = this.value(item, depth + 1);
      this.steps.pop();
      if (next !== item || nextKey !== key) (changes ??= new Map()).set(key, { key: nextKey, value: next });
    }
    if (!changes) return value;
    const copy = Object.create(Object.getPrototypeOf(value)) as Record<string, unknown>;
    for (const key of keys) {
      const change = changes.get(key);
      let name = change?.key ?? key;
      // Two redacted keys in one object must not overwrite each other.
      for (let n = 2; change && name !== key && Object.hasOwn(copy, name); n++) name = `${change.key} (${n})`;
      Object.defineProperty(copy, name, {
        value: change ? change.value : value[key],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  }

  /**
   * The key of `value` holding base64 binary the walk skips (scanning it costs time and finds only
   * noise), if any: `data` of an image or audio content block, `blob` of a resource's contents.
   * Only where MCP puts them (a content block of the result or of a prompt message, an embedded
   * resource's `resource`, an item of a resources/read `contents`) and only when the value is
   * base64: the same shape in `structuredContent` or in JSON inside a text, or a `data` that is
   * plain text, is screened like any other string.
   */
  private binaryKey(value: Record<string, unknown>): 'data' | 'blob' | undefined {
    if (this.inJson > 0) return undefined;
    const s = this.steps;
    const n = s.length;
    const item = (name: string, at: number) => s[at] === name && typeof s[at + 1] === 'number';
    const block = (n === 2 && item('content', 0)) || (n === 3 && item('messages', 0) && s[2] === 'content');
    if (block) this.blockType = value.type;
    if (block && (value.type === 'image' || value.type === 'audio')) return isBase64(value.data) ? 'data' : undefined;
    const contents =
      (n === 2 && item('contents', 0)) ||
      (s[n - 1] === 'resource' &&
        this.blockType === 'resource' &&
        ((n === 3 && item('content', 0)) || (n === 4 && item('messages', 0) && s[2] === 'content')));
    return contents && typeof value.uri === 'string' && isBase64(value.blob) ? 'blob' : undefined;
  }

  /** `text` with every match of every detector masked, glued ones included: for paths. */
  private masked(text: string, hits: Hit[]): string {
    let out = replaceSpans(text, hits, true);
    for (let pass = 1; pass < MAX_PASSES; pass++) {
      const more = this.scan(out);
      if (!more) return out;
      out = replaceSpans(out, more, true);
    }
    return '[REDACTED]';
  }

  private string(text: string, depth: number): string {
    if (text.length < SHORTEST_MATCH && this.plan.builtInOnly) return text;
    if (depth < MAX_DEPTH && looksLikeJson(text)) {
      const nested = this.nestedJson(text, depth);
      if (nested !== undefined) return nested;
    }
    const hits = this.scan(text);
    return hits ? this.apply(text, hits) : text;
  }

  /**
   * A text that holds JSON (a common shape of MCP text content) is screened as the document it
   * holds, not as raw text: escapes (`"line\nAKIA…"`) would hide a key from a raw scan, findings
   * point into the document, and a redacted document stays parseable. It is re-serialised only
   * when something in it was redacted; undefined when the text is not JSON.
   */
  private nestedJson(text: string, depth: number): string | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return undefined;
    }
    this.inJson++;
    const inner = this.value(parsed, depth + 1);
    this.inJson--;
    if (inner === parsed) return text;
    return JSON.stringify(inner, null, indentOf(text));
  }

  /**
   * Every match in `text`, detector by detector in the plan's order (the order of the screens),
   * found in the text as a reader takes it (fold.ts: no zero-width or soft-hyphen breaks, fullwidth
   * letters as ASCII) and given as spans of `text` itself.
   */
  private scan(text: string, redactingOnly = false): Hit[] | undefined {
    this.sawFoldable = undefined;
    const hits = this.scanText(text, redactingOnly);
    const folded = foldForDetection(text, this.sawFoldable);
    // Both readings: removing a zero-width character can also glue a secret to the letter before
    // it (`x\u200bAKIA…`), which the raw text shows apart.
    const more = folded && this.scanText(folded.text, redactingOnly);
    let all = hits;
    if (folded && more) {
      all ??= [];
      for (const { planned, spans } of more) {
        const hit = hitOf(all, planned);
        const known = [...hit.spans];
        for (const span of spans) {
          const back = { ...span, ...folded.back(span) };
          if (!known.some((k) => k.start < back.end && back.start < k.end)) hit.spans.push(back);
        }
      }
    }
    all = this.encoded(text, all, redactingOnly);
    const order = this.plan.detectors;
    return all && all.length > 0 ? all.sort((a, b) => order.indexOf(a.planned) - order.indexOf(b.planned)) : undefined;
  }

  /**
   * A third reading: the base64 runs of the text decoded (a model decodes `QVdTX0tFWT1BS0lB…` as
   * readily as it reads it), each run whose decoding is text holding a match found as a span of the
   * whole run, so redaction replaces the run. Runs that decode to binary (hashes, identifiers, keys
   * of no known shape) are left alone; runs a finding already covers are not decoded.
   */
  private encoded(text: string, found: Hit[] | undefined, redactingOnly: boolean): Hit[] | undefined {
    if (text.length < MIN_ENCODED_RUN) return found;
    const runs = encodedRuns(text);
    if (runs === undefined) return found;
    let budget = MAX_DECODED_CHARS;
    let out = found;
    for (let r = 0; r < runs.length; r += 2) {
      const start = runs[r] as number;
      const end = runs[r + 1] as number;
      budget -= end - start;
      if (budget < 0) break;
      if (out?.some((h) => h.spans.some((s) => s.start < end && start < s.end))) continue;
      const decoded = decodedText(text.slice(start, end));
      if (decoded === undefined) continue;
      const inner = this.scanText(decoded, redactingOnly);
      for (const { planned } of inner ?? []) hitOf((out ??= []), planned).spans.push({ start, end });
    }
    return out;
  }

  private scanText(text: string, redactingOnly: boolean): Hit[] | undefined {
    // One pass of the anchors regex wakes the detectors whose literals occur; the rest sleep.
    let woken: Set<PlannedDetector> | undefined;
    const anchors = this.plan.anchors;
    if (anchors) {
      const regex = anchors.regex;
      regex.lastIndex = 0;
      let m: RegExpExecArray | null;
      this.sawFoldable = false;
      while ((m = regex.exec(text)) !== null) {
        const wakes = anchors.wakes.get(m[0]);
        // Not an anchor: the pass's other alternative, a character to fold (screen-set.ts).
        if (wakes === undefined) this.sawFoldable = true;
        for (const planned of wakes ?? []) (woken ??= new Set()).add(planned);
        regex.lastIndex = m.index + 1; // anchors may overlap ("ACCAIza…" holds ACCA and AIza)
      }
    }
    let hits: Hit[] | undefined;
    for (const planned of this.plan.detectors) {
      if (redactingOnly && !planned.redact) continue;
      if (planned.detector.anchors && !woken?.has(planned)) continue;
      const spans: Span[] = [];
      planned.detector.find(text, spans);
      if (spans.length > 0) (hits ??= []).push({ planned, spans });
    }
    return hits;
  }

  /**
   * Records the hits at the current path and replaces the spans of redacting detectors. A secret
   * glued to another (`…-----END RSA PRIVATE KEY-----sk-proj-…`) may have been refused for its
   * neighbour, which the label has now replaced: the text is searched again until nothing new
   * turns up, so screening its own output finds nothing.
   */
  private apply(text: string, hits: Hit[], pass = 1): string {
    const path = this.pointer();
    for (const { planned, spans } of hits) this.log.push({ planned, path, count: spans.length });
    const out = replaceSpans(text, hits, false);
    if (out === text || !glued(text, hits)) return out;
    const more = this.scan(out, true);
    if (!more) return out;
    // Each pass redacts at least one more secret; a result built as a chain of thousands of
    // glued secrets is withheld rather than searched thousands of times.
    if (pass >= MAX_PASSES) throw new Unscreenable();
    return this.apply(out, more, pass + 1);
  }
}

const MAX_PASSES = 8;

/** The hit of `planned` in `hits`, added when there is none yet. */
function hitOf(hits: Hit[], planned: PlannedDetector): Hit {
  let hit = hits.find((h) => h.planned === planned);
  if (hit === undefined) hits.push((hit = { planned, spans: [] }));
  return hit;
}

/**
 * Characters no detector's match starts or ends with (whitespace, quotes, brackets, `,;|:=`): a
 * label next to one of them changes no neighbour's boundary, so `KEY=secret` needs no second pass.
 */
const isSeparator = (c: number): boolean =>
  c === 32 ||
  c === 9 ||
  c === 10 ||
  c === 13 ||
  c === 34 ||
  c === 39 ||
  c === 96 ||
  c === 40 ||
  c === 41 ||
  c === 91 ||
  c === 93 ||
  c === 123 ||
  c === 125 ||
  c === 60 ||
  c === 62 ||
  c === 44 ||
  c === 59 ||
  c === 124 ||
  c === 58 ||
  c === 61 ||
  Number.isNaN(c);

/** Whether a redacted span touches text that is not a separator (so a neighbour may now match). */
function glued(text: string, hits: Hit[]): boolean {
  for (const { planned, spans } of hits) {
    if (!planned.redact) continue;
    for (const { start, end } of spans) {
      if (!isSeparator(text.charCodeAt(start - 1)) || !isSeparator(text.charCodeAt(end))) return true;
    }
  }
  return false;
}

/** `text` with the spans of redacting detectors (of every detector, with `all`) replaced by labels. */
function replaceSpans(text: string, hits: Hit[], all: boolean): string {
  const marks: { start: number; end: number; name: string }[] = [];
  for (const { planned, spans } of hits) {
    if (all || planned.redact) for (const span of spans) marks.push({ start: span.start, end: span.end, name: planned.detector.name });
  }
  if (marks.length === 0) return text;
  marks.sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let at = 0;
  let open: { start: number; end: number; name: string } | undefined;
  for (const mark of marks) {
    if (open && mark.start < open.end) {
      open.end = Math.max(open.end, mark.end); // overlapping matches are withheld as one
      continue;
    }
    if (open) {
      out += `${text.slice(at, open.start)}[REDACTED:${open.name}]`;
      at = open.end;
    }
    open = { ...mark };
  }
  if (open) {
    out += `${text.slice(at, open.start)}[REDACTED:${open.name}]`;
    at = open.end;
  }
  return out + text.slice(at);
}

/** Whitespace aside, only base64 characters in groups of four: binary as MCP sends it. */
function isBase64(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const compact = value.replace(/\s+/g, '');
  return compact.length % 4 === 0 && BASE64.test(compact);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function looksLikeJson(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) continue;
    return c === 123 || c === 91 || c === 34; // { [ or a quote
  }
  return false;
}

/** The indentation the text was written with, so a redacted document keeps its look. */
function indentOf(text: string): string | undefined {
  // Line by line with indexOf: a regex scan of a compact megabyte (no line break at all) costs more.
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) {
    const m = INDENT.exec(text.slice(nl + 1, nl + 12));
    if (m) return m[1];
  }
  return undefined;
}

const INDENT = /^([ \t]{1,10})\S/;
