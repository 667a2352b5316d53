import { z } from 'zod';
import type { JsonValue } from '../engine/context.ts';
import type { ApprovalEvent, GateEvent, InvalidationEvent, PolicyReloadEvent, VerdictEvent } from '../engine/ports.ts';
import { MAX_RECORDED_FINDINGS } from '../engine/screen/screen-output.ts';
import { REFUSE_CODES } from '../engine/verdict.ts';
import { AuditError } from './errors.ts';
import { pointerSteps, redact } from './redact.ts';
import {
  APPROVAL_EVENTS,
  argsHash,
  CORE_TYPES,
  EXTENSION_TYPE,
  HEADER_FIELDS,
  OUTCOMES,
  type CheckpointMode,
  type ExtensionType,
  type OutcomeRecord,
  type RecordBody,
  type RecordHeader,
} from './record.ts';

/** After a forwarded call: how it went (the MCP proxy appends one per permitted call); the log adds the header. */
export type OutcomeEntry = Omit<OutcomeRecord, keyof RecordHeader> & { time?: number };

/** A key lifecycle event: `generated`, `loaded`, `rotated`, `revoked`, ... */
export interface KeyEntry {
  type: 'key';
  event: string;
  kid?: string;
  mode?: CheckpointMode;
  detail?: string;
  time?: number;
}

/** Any namespaced record type registered with `recordTypes` when the log was opened. */
export type ExtensionEntry = { type: ExtensionType; time?: number } & { [key: string]: JsonValue | undefined };

/** What `AuditLog.append` takes: the gate's events, outcomes, key events and registered extensions. */
export type AuditEntry = GateEvent | OutcomeEntry | KeyEntry | ExtensionEntry;

/** Validates an extension record's fields (without the chain header); returns what to record. */
export type RecordTypeSchema = z.ZodType<{ [key: string]: unknown }>;

export interface EntryOptions {
  recordArgs: boolean;
  redact: readonly string[];
  recordTypes: Readonly<Record<string, RecordTypeSchema>>;
  clock: () => number;
}

/** A W3C / OpenTelemetry trace id: 32 lowercase hex digits, not all zero. */
const TRACE_ID = /^(?!0{32})[0-9a-f]{32}$/;

/** Findings one outcome record keeps; the proxy and the adapters cap what they record to this. */
export const MAX_OUTCOME_FINDINGS = MAX_RECORDED_FINDINGS;

/** Where result screening found something (never the value), as an `outcome` record keeps it. */
export const OUTCOME_FINDINGS_SCHEMA = z
  .array(
    z.strictObject({
      screen: z.string().min(1).max(512),
      detector: z.string().min(1).max(512),
      path: z.string().max(4096),
      count: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    }),
  )
  .max(MAX_OUTCOME_FINDINGS);

const OUTCOME_SCHEMA = z.strictObject({
  type: z.literal('outcome'),
  evaluationId: z.string().min(1).max(512),
  outcome: z.enum(OUTCOMES),
  durationMs: z.number().min(0).max(Number.MAX_SAFE_INTEGER),
  action: z.string().max(512).optional(),
  session: z.string().max(512).optional(),
  error: z.string().max(4096).optional(),
  findings: OUTCOME_FINDINGS_SCHEMA.optional(),
  withheld: z.literal(true).optional(),
  traceId: z.string().regex(TRACE_ID).optional(),
  time: z.number().optional(),
});

const KEY_SCHEMA = z.strictObject({
  type: z.literal('key'),
  event: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/),
  kid: z.string().min(1).max(512).optional(),
  mode: z.enum(['hybrid', 'pq']).optional(),
  detail: z.string().max(4096).optional(),
  time: z.number().optional(),
});

const VERDICTS = new Set(['permit', 'refuse', 'invalidate']);
const PRINCIPAL_KINDS = new Set(['user', 'agent', 'service', 'scheduler', 'external']);
const CODES: ReadonlySet<string> = new Set(REFUSE_CODES);
const INTERNAL_TYPES = new Set(['genesis', 'checkpoint', 'recovery', 'resume', 'segment']);

const ID_MAX = 512;
const TEXT_MAX = 4096;

/** Turns what callers append into record bodies: validated, well-formed, arguments hashed. */
export class EntryEncoder {
  private readonly pointers: string[][];

  constructor(private readonly opts: EntryOptions) {
    this.pointers = opts.redact.map(pointerSteps);
    for (const type of Object.keys(opts.recordTypes)) {
      if (!EXTENSION_TYPE.test(type)) throw new TypeError(`record type "${type}" must be namespaced, like "myapp.approval"`);
    }
  }

  body(entry: AuditEntry): RecordBody {
    if (entry === null || typeof entry !== 'object') throw bad('an entry must be an object');
    switch (entry.type) {
      case 'verdict':
        return this.verdict(entry as VerdictEvent);
      case 'policy_reload':
        return policyReload(entry as PolicyReloadEvent, this.opts.clock);
      case 'invalidation':
        return invalidation(entry as InvalidationEvent, this.opts.clock);
      case 'outcome':
        return this.checked(OUTCOME_SCHEMA, entry);
      case 'approval':
        return approval(entry as ApprovalEvent, this.opts.clock);
      case 'key':
        return this.checked(KEY_SCHEMA, entry);
      default:
        return this.extension(entry as ExtensionEntry);
    }
  }

  private verdict(e: VerdictEvent): RecordBody {
    if (typeof e.evaluationId !== 'string' || e.evaluationId.length === 0) throw bad('verdict: evaluationId must be a non-empty string');
    if (typeof e.principal !== 'string') throw bad('verdict: principal must be a string');
    if (!VERDICTS.has(e.verdict)) throw bad('verdict: verdict must be permit, refuse or invalidate');
    const body: RecordBody = {
      type: 'verdict',
      time: timeOf(e.time, this.opts.clock),
      evaluationId: text(e.evaluationId, ID_MAX),
      principal: text(e.principal, ID_MAX),
      verdict: e.verdict,
    };
    if (typeof e.principalKind === 'string' && PRINCIPAL_KINDS.has(e.principalKind)) body.kind = e.principalKind;
    if (typeof e.action === 'string') body.action = text(e.action, ID_MAX);
    if (typeof e.code === 'string' && CODES.has(e.code)) body.code = e.code;
    if (typeof e.evaluator === 'string') body.evaluator = text(e.evaluator, ID_MAX);
    if (typeof e.reason === 'string') body.reason = text(e.reason, TEXT_MAX);
    if (typeof e.policy === 'string') body.policy = text(e.policy, ID_MAX);
    if (typeof e.permit === 'string') body.permit = text(e.permit, ID_MAX);
    if (typeof e.session === 'string') body.session = text(e.session, ID_MAX);
    if (typeof e.resource === 'string') body.resource = text(e.resource, TEXT_MAX);
    if (typeof e.callId === 'string') body.callId = text(e.callId, ID_MAX);
    if (e.observed === true) body.observed = true;
    if (typeof e.approval === 'string') body.approval = text(e.approval, ID_MAX);
    // Only a well-formed id: the field exists to be searched for in a tracing backend.
    if (typeof e.traceId === 'string' && TRACE_ID.test(e.traceId)) body.traceId = e.traceId;
    // null arguments: the context never validated, so there is nothing trustworthy to hash.
    if (e.args !== null && e.args !== undefined) {
      try {
        body.args = argsHash(e.args);
      } catch (err) {
        body.argsError = `arguments are not JSON: ${(err as Error).message}`;
      }
      if (this.opts.recordArgs && body.args !== undefined) {
        const { value, removed } = redact(e.args as JsonValue, this.pointers);
        body.argsValue = value;
        if (removed.length > 0) {
          body.redacted = removed.map((i) => this.opts.redact[i] as string);
          // The hash covers the removed values: beside the rest of the arguments it would let a
          // reader recover a low-entropy secret (a PIN) by guessing and re-hashing. Drop it.
          delete body.args;
        }
      }
    }
    return body;
  }

  private checked(schema: z.ZodType<{ time?: number | undefined; type: string }>, entry: object): RecordBody {
    const parsed = schema.safeParse(entry);
    if (!parsed.success) throw bad(`${(entry as { type: string }).type}: ${issues(parsed.error)}`);
    const { time, ...rest } = parsed.data;
    return { ...rest, time: timeOf(time, this.opts.clock) };
  }

  private extension(entry: ExtensionEntry): RecordBody {
    const type: unknown = entry.type;
    if (typeof type !== 'string') throw bad('an entry needs a string "type"');
    if (INTERNAL_TYPES.has(type)) throw bad(`"${type}" records are written by the log itself`);
    if (CORE_TYPES.has(type) || !EXTENSION_TYPE.test(type))
      throw bad(`unknown record type "${type}" (extension types are namespaced, like "myapp.approval")`);
    const schema = this.opts.recordTypes[type];
    if (!schema) throw bad(`record type "${type}" is not registered (AuditLog.open(path, { recordTypes: { "${type}": schema } }))`);
    const { type: _type, time, ...fields } = entry;
    const parsed = schema.safeParse(fields);
    if (!parsed.success) throw bad(`${type}: ${issues(parsed.error)}`);
    for (const key of Object.keys(parsed.data)) {
      if (HEADER_FIELDS.has(key)) throw bad(`${type}: "${key}" is a field of the chain header`);
    }
    return { ...parsed.data, type, time: timeOf(time, this.opts.clock) };
  }
}

function policyReload(e: PolicyReloadEvent, clock: () => number): RecordBody {
  if (typeof e.ok !== 'boolean' || !Number.isSafeInteger(e.policies) || e.policies < 0)
    throw bad('policy_reload: needs ok (boolean) and policies (count)');
  const body: RecordBody = { type: 'policy_reload', time: timeOf(e.time, clock), ok: e.ok, policies: e.policies };
  if (typeof e.error === 'string') body.error = text(e.error, TEXT_MAX);
  return body;
}

function invalidation(e: InvalidationEvent, clock: () => number): RecordBody {
  const s = e.scope as { type?: unknown; sessionId?: unknown; principalId?: unknown } | undefined;
  let scope: RecordBody['scope'];
  if (s?.type === 'session' && typeof s.sessionId === 'string') scope = { type: 'session', sessionId: text(s.sessionId, ID_MAX) };
  else if (s?.type === 'principal' && typeof s.principalId === 'string')
    scope = { type: 'principal', principalId: text(s.principalId, ID_MAX) };
  else if (s?.type === 'global') scope = { type: 'global' };
  else throw bad('invalidation: scope must be session, principal or global');
  return {
    type: 'invalidation',
    time: timeOf(e.time, clock),
    scope,
    reason: text(String(e.reason ?? ''), TEXT_MAX),
    remote: e.remote === true,
  };
}

const APPROVAL_EVENT_SET: ReadonlySet<string> = new Set(APPROVAL_EVENTS);
const APPROVAL_STATUS_SET: ReadonlySet<string> = new Set(['pending', 'granted', 'denied', 'expired', 'used']);

function approval(e: ApprovalEvent, clock: () => number): RecordBody {
  if (!APPROVAL_EVENT_SET.has(e.event)) throw bad(`approval: event must be one of ${APPROVAL_EVENTS.join(', ')}`);
  if (!APPROVAL_STATUS_SET.has(e.status)) throw bad('approval: status must be pending, granted, denied, expired or used');
  for (const key of ['approval', 'policy', 'principal', 'action', 'args'] as const) {
    if (typeof e[key] !== 'string' || e[key].length === 0) throw bad(`approval: ${key} must be a non-empty string`);
  }
  const body: RecordBody = {
    type: 'approval',
    time: timeOf(e.time, clock),
    event: e.event,
    approval: text(e.approval, ID_MAX),
    status: e.status,
    policy: text(e.policy, ID_MAX),
    principal: text(e.principal, ID_MAX),
    action: text(e.action, ID_MAX),
    args: text(e.args, ID_MAX),
  };
  if (typeof e.principalKind === 'string' && PRINCIPAL_KINDS.has(e.principalKind)) body.kind = e.principalKind;
  if (typeof e.resource === 'string') body.resource = text(e.resource, TEXT_MAX);
  if (typeof e.audience === 'string') body.audience = text(e.audience, ID_MAX);
  if (typeof e.session === 'string') body.session = text(e.session, ID_MAX);
  if (typeof e.evaluationId === 'string') body.evaluationId = text(e.evaluationId, ID_MAX);
  if (typeof e.approver === 'string') body.approver = text(e.approver, ID_MAX);
  if (typeof e.approverKind === 'string' && PRINCIPAL_KINDS.has(e.approverKind)) body.approverKind = e.approverKind;
  if (Array.isArray(e.approverRoles))
    body.approverRoles = e.approverRoles
      .filter((r) => typeof r === 'string')
      .slice(0, 64)
      .map((r) => text(r, ID_MAX));
  if (typeof e.note === 'string') body.note = text(e.note, TEXT_MAX);
  if (typeof e.expiresAt === 'number' && Number.isFinite(e.expiresAt)) body.expiresAt = e.expiresAt;
  return body;
}

function timeOf(time: unknown, clock: () => number): number {
  return typeof time === 'number' && Number.isFinite(time) ? time : clock();
}

/** Strings go into canonical JSON, which refuses lone surrogates: replace them, and bound length. */
function text(s: string, max: number): string {
  const cut = s.length <= max ? s : `${s.slice(0, max)}…[truncated ${s.length - max} chars]`;
  const w = cut as unknown as { isWellFormed(): boolean; toWellFormed(): string };
  return w.isWellFormed() ? cut : w.toWellFormed();
}

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(entry)'}: ${i.message}`).join('; ');
}

function bad(reason: string): AuditError {
  return new AuditError('BAD_ENTRY', -1, reason);
}
