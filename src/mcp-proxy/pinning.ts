import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { canonicalJson, hashArgs } from '../engine/canonical-json.ts';

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

export interface PinEntry {
  v?: typeof PIN_ENTRY_VERSION;
  hash: string;
  definition: ToolDefinition;
  at: string;
}

export interface PinFile {
  version: 1;
  /** Approved definitions, by action (`server.tool`). */
  tools: Record<string, PinEntry>;
  /** Definitions seen that differ from the approved one, waiting for `kavach mcp approve-tools`. */
  pending: Record<string, PinEntry>;
}

export type PinStatus = 'pinned' | 'new' | 'changed';

/** Every field of the tool (a field a later protocol adds is covered too). */
export function definitionOf(tool: ToolDefinition): ToolDefinition {
  const d: ToolDefinition = { name: tool.name };
  for (const key of Object.keys(tool)) if (tool[key] !== undefined) d[key] = tool[key];
  return JSON.parse(canonicalJson(d)) as ToolDefinition;
}

export function hashDefinition(tool: ToolDefinition): string {
  return hashArgs(definitionOf(tool));
}

/** The hash a pin entry without `v` holds: the fields covered before icons, execution and _meta. */
function legacyHash(tool: ToolDefinition): string {
  const d: ToolDefinition = { name: tool.name };
  for (const key of ['title', 'description', 'inputSchema', 'outputSchema', 'annotations']) if (tool[key] !== undefined) d[key] = tool[key];
  return hashArgs(d);
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
  return { version: 1, tools: doc.tools, pending: doc.pending ?? {} };
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
 * Tool pinning (rug-pull protection). The first definition seen of a tool is trusted and pinned;
 * a later different one is held back (hidden, calls refused) until approved. A pin counts only
 * once it is on disk: a check whose pins could not be written fails, and the server's next check
 * writes them again.
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
   * Classifies the tools of one server, pinning new ones. Returns the actions held back; throws
   * PinWriteError when the pins could not be written (in memory they stay, and the next check of
   * this server writes them again, changed or not).
   */
  async check(server: string, tools: readonly ToolDefinition[]): Promise<Set<string>> {
    const changed = new Set<string>();
    let dirty = false;
    const now = new Date().toISOString();
    for (const tool of tools) {
      const action = `${server}.${tool.name}`;
      const hash = hashDefinition(tool);
      let pinned = this.pins.tools[action];
      if (pinned && pinned.v !== PIN_ENTRY_VERSION && pinned.hash === legacyHash(tool)) {
        // Pinned before every field was covered, and unchanged in the fields that were: the rest
        // is trusted as first seen, once; from then on the entry covers every field.
        pinned = this.pins.tools[action] = entry(tool, hash, pinned.at);
        dirty = true;
      }
      if (!pinned) {
        this.pins.tools[action] = entry(tool, hash, now);
        dirty = true;
      } else if (pinned.hash !== hash) {
        changed.add(action);
        if (this.pins.pending[action]?.hash !== hash) {
          this.pins.pending[action] = entry(tool, hash, now);
          dirty = true;
          this.log(`tool ${action} changed its definition since it was pinned; hidden until \`kavach mcp approve-tools\``);
        }
      } else if (this.pins.pending[action]) {
        delete this.pins.pending[action];
        dirty = true;
      }
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
    return changed;
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
