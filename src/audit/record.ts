import { hash as digest } from 'node:crypto';
import { canonicalJson, wellFormed } from '../engine/canonical-json.ts';
import type { JsonValue, PrincipalKind } from '../engine/context.ts';
import type { InvalidationScope, RefuseCode } from '../engine/verdict.ts';

/**
 * The audit log's records. One JSON object per line; every record carries the chain header
 * (`seq`, `prev`, `log`, `time`, `hash`) and a `type` that says what it is. Core types are plain
 * words; extension types are namespaced with a dot (`mcp.session`), so they never collide.
 */
export const AUDIT_FORMAT_VERSION = 1;

/** `prev` of the genesis record: the all-zero SHA-256, base64url. */
export const ZERO_HASH = 'A'.repeat(43);

/** Domain tag hashed in front of every record, so no other kind of message shares the hash space. */
const HASH_DOMAIN = 'kavach.audit.v1\n';

export type CheckpointMode = 'hybrid' | 'pq';

export interface RecordHeader {
  /** Position in the chain, from 0. */
  seq: number;
  /** `hash` of the record before (ZERO_HASH for the genesis record). */
  prev: string;
  /** The log's id, fixed at creation: a record from another log is a splice. */
  log: string;
  /** ms since epoch. */
  time: number;
  /** SHA-256 (base64url) of the domain tag and the canonical JSON of every other field. */
  hash: string;
}

export interface GenesisRecord extends RecordHeader {
  type: 'genesis';
  version: number;
  /** Signature mode of every checkpoint in this log. */
  mode: CheckpointMode;
  kid: string;
}

export interface VerdictRecord extends RecordHeader {
  type: 'verdict';
  evaluationId: string;
  principal: string;
  /** The principal's kind. */
  kind?: PrincipalKind;
  action?: string;
  verdict: 'permit' | 'refuse' | 'invalidate';
  code?: RefuseCode;
  evaluator?: string;
  reason?: string;
  policy?: string;
  /** SHA-256 of the canonical JSON of the arguments, as in the permit's `args` claim. */
  args?: string;
  /** The argument values (only with `recordArgs`), with the `redact` paths removed. */
  argsValue?: JsonValue;
  /** Which `redact` paths were present and removed. */
  redacted?: string[];
  /** Why the arguments could not be hashed or kept. */
  argsError?: string;
  /** The permit's `jti`, when a signed permit was issued. */
  permit?: string;
  session?: string;
  resource?: string;
  callId?: string;
  /** Observe mode: the caller was permitted; `verdict` is what enforcement would have answered. */
  observed?: true;
  /** The approval request this verdict is about, or the grant the permitted call used. */
  approval?: string;
  /** The OpenTelemetry trace the evaluation was part of (32 lowercase hex digits). */
  traceId?: string;
}

export interface PolicyReloadRecord extends RecordHeader {
  type: 'policy_reload';
  ok: boolean;
  policies: number;
  error?: string;
}

export interface InvalidationRecord extends RecordHeader {
  type: 'invalidation';
  scope: InvalidationScope;
  reason: string;
  remote: boolean;
}

export const APPROVAL_EVENTS = ['requested', 'granted', 'denied', 'used', 'returned', 'expired'] as const;
export type ApprovalEventName = (typeof APPROVAL_EVENTS)[number];

/**
 * A human approval's life (DESIGN §11): requested, each decision (granted / denied, with who and
 * their note), each use, a use given back (the call was refused later), and expiry.
 */
export interface ApprovalRecord extends RecordHeader {
  type: 'approval';
  event: ApprovalEventName;
  /** The request's id (the permit's `apr` claim). */
  approval: string;
  /** The request's status after the event. */
  status: 'pending' | 'granted' | 'denied' | 'expired' | 'used';
  policy: string;
  principal: string;
  kind?: PrincipalKind;
  action: string;
  resource?: string;
  audience?: string;
  session?: string;
  /** SHA-256 of the canonical JSON of the arguments, as in the permit's `args` claim. */
  args: string;
  evaluationId?: string;
  approver?: string;
  approverKind?: PrincipalKind;
  approverRoles?: string[];
  note?: string;
  expiresAt?: number;
}

export const OUTCOMES = ['ok', 'tool_error', 'upstream_failure'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** What happened to a permitted call after it was forwarded (the MCP proxy writes these). */
export interface OutcomeRecord extends RecordHeader {
  type: 'outcome';
  evaluationId: string;
  outcome: Outcome;
  durationMs: number;
  /** The action the call was for (`<server>.<tool>`), for reading the log without joining. */
  action?: string;
  session?: string;
  error?: string;
  /**
   * What result screening found in the answer (DESIGN §13): where and how often, never the value.
   * Absent when nothing was found.
   */
  findings?: OutcomeFinding[];
  /** The answer was withheld from the client (a block-mode screen matched: OUTPUT_BLOCKED). */
  withheld?: true;
  /** The OpenTelemetry trace of the call (32 lowercase hex digits). */
  traceId?: string;
}

/** One result-screening finding as the audit log keeps it. */
export interface OutcomeFinding {
  screen: string;
  detector: string;
  /** JSON Pointer into the tool's result. */
  path: string;
  count: number;
}

/** Key lifecycle: generated, loaded, rotated, revoked, or the log's own checkpoint key changing. */
export interface KeyRecord extends RecordHeader {
  type: 'key';
  event: string;
  kid?: string;
  mode?: CheckpointMode;
  detail?: string;
}

/** Signs (log, size, head, time): everything before `seq` is sealed. `size === seq`, `head === prev`. */
export interface CheckpointRecord extends RecordHeader {
  type: 'checkpoint';
  size: number;
  head: string;
  mode: CheckpointMode;
  kid: string;
  /** The signature envelope over the checkpoint message. */
  sig: string;
}

/** A torn last line (crash mid-write) was cut when the log was reopened. */
export interface RecoveryRecord extends RecordHeader {
  type: 'recovery';
  file: string;
  cutBytes: number;
  /** SHA-256 (base64url) of the bytes that were cut. */
  cutHash: string;
}

/**
 * A writer reopened a log whose last records no checkpoint sealed (seq `from` .. `from + unsealed - 1`):
 * written before a crash, or added to the file while no writer held it. The next checkpoint seals
 * them with the log's key, so this record is what keeps that visible.
 */
export interface ResumeRecord extends RecordHeader {
  type: 'resume';
  from: number;
  unsealed: number;
}

/** First record of every segment after the first (size-based rotation). */
export interface SegmentRecord extends RecordHeader {
  type: 'segment';
  segment: number;
}

/** A namespaced type (`vendor.thing`): the generic extension point. */
export type ExtensionType = `${string}.${string}`;
export type ExtensionRecord<
  T extends ExtensionType = ExtensionType,
  D extends { [key: string]: JsonValue } = { [key: string]: JsonValue },
> = RecordHeader & { type: T } & D;

export type CoreRecord =
  | GenesisRecord
  | VerdictRecord
  | PolicyReloadRecord
  | InvalidationRecord
  | OutcomeRecord
  | ApprovalRecord
  | KeyRecord
  | CheckpointRecord
  | RecoveryRecord
  | ResumeRecord
  | SegmentRecord;

export type AuditRecord = CoreRecord | ExtensionRecord;
export type AuditRecordType = CoreRecord['type'];

export const CORE_TYPES: ReadonlySet<string> = new Set<AuditRecordType>([
  'genesis',
  'verdict',
  'policy_reload',
  'invalidation',
  'outcome',
  'approval',
  'key',
  'checkpoint',
  'recovery',
  'resume',
  'segment',
]);
export const EXTENSION_TYPE = /^[a-z][a-z0-9_-]{0,63}(\.[a-z0-9_-]{1,64}){1,4}$/;
export const HEADER_FIELDS: ReadonlySet<string> = new Set(['seq', 'prev', 'log', 'time', 'hash', 'type']);

/** A record before it takes its place in the chain. */
export type RecordBody = { type: string; time: number; [key: string]: unknown };

/**
 * The engine's hashArgs (SHA-256 of canonicalJson(value ?? {}), base64url), computed with the
 * one-shot hash: it is the hottest line of an append. A property test pins it to hashArgs.
 */
export function argsHash(value: unknown): string {
  return digest('sha256', canonicalJson(value ?? {}), 'base64url');
}

/** SHA-256, base64url, of the domain tag and `canonical`. */
export function recordHash(canonical: string): string {
  return digest('sha256', HASH_DOMAIN + canonical, 'base64url');
}

/** Every key a verdict record can have, in canonical (UTF-16 code unit) order. */
const VERDICT_KEYS = [
  'action',
  'approval',
  'args',
  'argsError',
  'argsValue',
  'callId',
  'code',
  'evaluationId',
  'evaluator',
  'kind',
  'log',
  'observed',
  'permit',
  'policy',
  'prev',
  'principal',
  'reason',
  'redacted',
  'resource',
  'seq',
  'session',
  'time',
  'traceId',
  'type',
  'verdict',
] as const;

/**
 * Canonical JSON of a record. Verdicts (the hot path) are flat objects of well-formed strings,
 * finite numbers and booleans: copied in canonical key order, JSON.stringify yields exactly the
 * canonical bytes without canonicalJson's per-call sort (a property test holds the two equal).
 * Anything nested (recorded argument values) or any other type goes through canonicalJson.
 */
export function encodeRecord(fields: Record<string, unknown>): string {
  if (fields.type !== 'verdict' || fields.argsValue !== undefined) return canonicalJson(fields);
  const ordered: Record<string, unknown> = {};
  for (const key of VERDICT_KEYS) {
    const v = fields[key];
    if (v !== undefined) ordered[key] = v;
  }
  return JSON.stringify(ordered);
}

/**
 * The canonical JSON of a parsed record, fast when the parse kept canonical order and nothing is
 * nested (then JSON.stringify reproduces it); undefined when the full canonicalJson is needed.
 */
export function fastCanonical(obj: Record<string, unknown>): string | undefined {
  let prev: string | undefined;
  for (const key in obj) {
    if (prev !== undefined && !(key > prev)) return undefined;
    const v = obj[key];
    if (typeof v === 'object' && v !== null) return undefined;
    if (typeof v === 'string' && !wellFormed(v)) return undefined;
    prev = key;
  }
  return JSON.stringify(obj);
}

/**
 * The line for a record (without `hash`): its canonical JSON with `hash` appended as the last key,
 * so a reader recomputes the hash from the parsed fields and checks the bytes are exactly these.
 */
export function sealRecord(fields: object): { hash: string; line: string } {
  const canonical = encodeRecord(fields as Record<string, unknown>);
  const hash = recordHash(canonical);
  return { hash, line: lineOf(canonical, hash) };
}

export function lineOf(canonical: string, hash: string): string {
  return `${canonical.slice(0, -1)},"hash":"${hash}"}`;
}

/** The bytes a checkpoint signs: canonical JSON of (log id, size, head hash, time). */
export function checkpointMessage(c: { log: string; size: number; head: string; time: number }): Uint8Array {
  return new TextEncoder().encode(canonicalJson({ head: c.head, log: c.log, size: c.size, time: c.time }));
}

export const CHECKPOINT_DOMAIN = 'audit/checkpoint';
