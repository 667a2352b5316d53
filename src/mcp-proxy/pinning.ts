import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { canonicalJson, hashArgs } from '../engine/canonical-json.ts';
import { scanToolDefinition, type ToolFinding } from '../engine/screen/tool-scan.ts';

/** A tool definition as a client is shown it; a change to any part of it is a new tool. */
export interface ToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
  /** Hints (readOnlyHint, destructiveHint...) some clients auto-approve calls by. */
  annotations?: unknown;
  icons?: unknown;
  execution?: unknown;
  _meta?: unknown;
  [field: string]: unknown;
}

/**
 * Pin entries with `v: 2` cover every field of the definition. Entries without `v` were pinned
 * when only name, title, description, inputSchema, outputSchema and annotations were covered.
 */
export const PIN_ENTRY_VERSION = 2;

/**
 * Why a tool waits for `kavach mcp approve-tools`: its definition differs from the approved one
 * (`changed`), its server listed it after the server's tools were pinned (`new`), or it was seen
 * for the first time with a tool-definition scan finding (`suspect`).
 */
export type HoldReason = 'changed' | 'new' | 'suspect';

export interface PinEntry {
  v?: typeof PIN_ENTRY_VERSION;
  hash: string;
  definition: ToolDefinition;
  at: string;
  /** Pending entries: why it is held (entries written before this field: `changed`). */
  held?: HoldReason;
  /** Pending entries: what the tool-definition scan (DESIGN §13) found in it, escaped. */
  findings?: ToolFinding[];
}

export interface PinFile {
  version: 1;
  /** Approved definitions, by action (`server.tool`). */
  tools: Record<string, PinEntry>;
  /** Definitions seen but not approved (changed, new or suspect), waiting for `kavach mcp approve-tools`. */
  pending: Record<string, PinEntry>;
  /**
   * Servers whose tool list was pinned (their first listing): a tool they list later is held as
   * new. Files written before this field: a server with any pinned or pending tool.
   */
  servers?: Record<string, { at: string }>;
}

/** A tool held back by the pin check, and why. */
export interface ToolHold {
  reason: HoldReason;
  /** The scan's findings in the held definition: none for a clean changed or new tool. */
  findings: readonly ToolFinding[];
}

/** Every field of the tool (a field a later protocol adds is covered too). */
export function definitionOf(tool: ToolDefinition): ToolDefinition {
  const d: ToolDefinition = { name: tool.name };
  for (const key of Object.keys(tool)) if (tool[key] !== undefined) d[key] = tool[key];
  return JSON.parse(canonicalJson(d)) as ToolDefinition;
}

export function hashDefinition(tool: ToolDefinition): string {
  return hashArgs(definitionOf(tool));
}

const LEGACY_FIELDS = ['title', 'description', 'inputSchema', 'outputSchema', 'annotations'];

/** The hash a pin entry without `v` holds: the fields covered before icons, execution and _meta. */
function legacyHash(tool: ToolDefinition): string {
  const d: ToolDefinition = { name: tool.name };
  for (const key of LEGACY_FIELDS) if (tool[key] !== undefined) d[key] = tool[key];
  return hashArgs(d);
}

/** The fields a pin entry without `v` never covered: seen for the first time when it is upgraded. */
function uncoveredFields(tool: ToolDefinition): Record<string, unknown> {
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(tool)) if (key !== 'name' && !LEGACY_FIELDS.includes(key)) rest[key] = tool[key];
  return rest;
}

function entry(tool: ToolDefinition, hash: string, at: string): PinEntry {
  return { v: PIN_ENTRY_VERSION, hash, definition: definitionOf(tool), at };
}

export async function readPins(path: string): Promise<PinFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, tools: {}, pending: {} };
    throw err;
  }
  const doc = JSON.parse(text) as Partial<PinFile>;
  if (doc.version !== 1 || typeof doc.tools !== 'object' || doc.tools === null) throw new Error(`${path} is not a kavach tool-pin file`);
  const pins: PinFile = { version: 1, tools: doc.tools, pending: doc.pending ?? {} };
  if (typeof doc.servers === 'object' && doc.servers !== null) pins.servers = doc.servers;
  return pins;
}

/** The hold a pending entry stands for (`pinned`: the approved entry of the same action, if any). */
export function holdOf(pending: PinEntry, pinned: PinEntry | undefined): ToolHold {
  const reason = pending.held ?? (pinned ? 'changed' : 'new');
  return { reason, findings: Array.isArray(pending.findings) ? pending.findings : [] };
}

/** Atomic replace, so a crash mid-write never leaves a half file (which would unpin everything). */
export async function writePins(path: string, pins: PinFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(pins, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/** The pin file could not be written, so the pins it should hold are not durable. */
export class PinWriteError extends Error {
  /** What the write failed with. */
  readonly detail: string;

  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`could not write the pin file ${path}: ${detail}`, { cause });
    this.name = 'PinWriteError';
    this.detail = detail;
  }
}

/**
 * Tool pinning (rug-pull protection). A server's first tool list is pinned as it is, but for a
 * tool the tool-definition scan finds something in; a tool it lists later, and a later different
 * definition, are held back (hidden, calls refused) until approved. A pin counts only once it is
 * on disk: a check whose pins could not be written fails, and the server's next check writes
 * them again.
 */
export class ToolPins {
  private pins: PinFile = { version: 1, tools: {}, pending: {} };
  private writing: Promise<void> = Promise.resolve();
  /** Servers whose last check could not write its pins. */
  private readonly unsaved = new Set<string>();

  constructor(
    readonly path: string,
    private readonly log: (msg: string) => void,
  ) {}

  /**
   * Reads the file, after the writes queued so far. A pin made while the file is being read would
   * be lost (and the tool's next definition trusted as new): such a read is taken again, once
   * that pin is written. Every pin queues its write in the same tick, so `writing` says if one did.
   */
  async load(): Promise<void> {
    for (;;) {
      const writing = this.writing;
      await writing;
      const pins = await readPins(this.path);
      if (writing !== this.writing) continue;
      this.pins = pins;
      return;
    }
  }

  /** The approved definitions of one server's tools: what it listed in an earlier run. */
  pinnedOf(server: string): ToolDefinition[] {
    const prefix = `${server}.`;
    const out: ToolDefinition[] = [];
    for (const [action, pinned] of Object.entries(this.pins.tools)) {
      if (!action.startsWith(prefix)) continue;
      const definition = pinned?.definition;
      if (definition && typeof definition === 'object' && definition.name === action.slice(prefix.length)) out.push(definition);
    }
    return out;
  }

  /**
   * Classifies the tools of one server, pinning new ones. Returns the actions held back, with
   * why; throws PinWriteError when the pins could not be written (in memory they stay, and the
   * next check of this server writes them again, changed or not). `instructions`: the server's,
   * scanned with each definition not seen before.
   */
  async check(server: string, tools: readonly ToolDefinition[], instructions?: string): Promise<Map<string, ToolHold>> {
    const held = new Map<string, ToolHold>();
    let dirty = false;
    const now = new Date().toISOString();
    const listPinned = this.serverPinned(server);
    for (const tool of tools) {
      const action = `${server}.${tool.name}`;
      const hash = hashDefinition(tool);
      let pinned = this.pins.tools[action];
      if (
        pinned &&
        pinned.v !== PIN_ENTRY_VERSION &&
        pinned.hash === legacyHash(tool) &&
        scanToolDefinition(uncoveredFields(tool)).length === 0
      ) {
        // Pinned before every field was covered, and unchanged in the fields that were: the rest
        // is trusted as first seen, once, if the scan finds nothing in it (else it is held below
        // as a change); from then on the entry covers every field.
        pinned = this.pins.tools[action] = entry(tool, hash, pinned.at);
        dirty = true;
      }
      if (pinned?.hash === hash) {
        if (this.pins.pending[action]) {
          delete this.pins.pending[action];
          dirty = true;
        }
        continue;
      }
      const waiting = this.pins.pending[action];
      if (waiting?.hash === hash) {
        held.set(action, holdOf(waiting, pinned));
        continue;
      }
      // A definition not seen before: scanned before it is trusted, or shown to the operator.
      const findings = scanToolDefinition(tool, instructions);
      dirty = true;
      if (!pinned && !listPinned && findings.length === 0) {
        this.pins.tools[action] = entry(tool, hash, now);
        continue;
      }
      const reason: HoldReason = pinned ? 'changed' : listPinned ? 'new' : 'suspect';
      const pending: PinEntry = { ...entry(tool, hash, now), held: reason };
      if (findings.length > 0) pending.findings = findings;
      this.pins.pending[action] = pending;
      held.set(action, { reason, findings });
      this.log(`tool ${action} ${heldBecause(reason, findings)}; hidden until \`kavach mcp approve-tools\``);
    }
    if (!listPinned) {
      // Even an empty first list: a tool the server adds later is new.
      this.pins.servers = { ...this.pins.servers, [server]: { at: now } };
      dirty = true;
    }
    if (dirty || this.unsaved.has(server)) {
      try {
        await this.save();
      } catch (err) {
        this.unsaved.add(server);
        throw new PinWriteError(this.path, err);
      }
      this.unsaved.delete(server);
    }
    return held;
  }

  /** Whether the server's tool list was pinned before (a pin file from before `servers`: any tool of it pinned or pending). */
  private serverPinned(server: string): boolean {
    if (this.pins.servers && Object.hasOwn(this.pins.servers, server)) return true;
    // Server names hold no dot (config.ts), so the prefix is the server's alone.
    const prefix = `${server}.`;
    return [...Object.keys(this.pins.tools), ...Object.keys(this.pins.pending)].some((a) => a.startsWith(prefix));
  }

  private save(): Promise<void> {
    const snapshot = structuredClone(this.pins);
    const written = this.writing.then(() => writePins(this.path, snapshot));
    // The queue goes on past a failed write; the check that asked for it is told.
    this.writing = written.catch(() => undefined);
    return written;
  }
}

/**
 * `kavach mcp approve-tools`: pending definitions become the pinned ones. With `reviewed`
 * (action → hash of the definition the operator was shown), a definition that changed again
 * since is left pending.
 */
export async function approvePending(
  path: string,
  only?: readonly string[],
  reviewed?: Readonly<Record<string, string>>,
): Promise<{ approved: string[]; pins: PinFile; before: PinFile }> {
  const pins = await readPins(path);
  const before = structuredClone(pins);
  const approved: string[] = [];
  for (const [action, entry] of Object.entries(pins.pending)) {
    if (only && only.length > 0 && !only.includes(action)) continue;
    if (reviewed && reviewed[action] !== entry.hash) continue;
    pins.tools[action] = { ...entry, at: new Date().toISOString() };
    delete pins.pending[action];
    approved.push(action);
  }
  if (approved.length > 0) await writePins(path, pins);
  return { approved, pins, before };
}

/** Why a tool is held, for a log line: kinds of finding only, never the text (it may be the attack). */
export function heldBecause(reason: HoldReason, findings: readonly ToolFinding[]): string {
  const what =
    reason === 'changed'
      ? 'changed its definition since it was pinned'
      : reason === 'new'
        ? 'appeared after the tools of its server were pinned'
        : 'was seen for the first time with a suspect definition';
  if (findings.length === 0) return what;
  return `${what}; the tool-definition scan found ${[...new Set(findings.map((f) => f.kind))].join(', ')}`;
}
