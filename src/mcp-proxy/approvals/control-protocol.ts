import { z } from 'zod';
import { APPROVAL_STATUSES } from '../../engine/approvals/types.ts';

/**
 * `kavach approvals` ↔ a running proxy: one JSON object per line each way, over a unix socket
 * (mode 0600 in a 0700 directory). Whoever can open the socket runs as the proxy's user; `as`
 * names who decides, and the proxy gives them the roles their `[[approvals.approvers]]` entry
 * lists (none otherwise) — when that entry has a token, only with the token (`claimedApprover`).
 */
export const CONTROL_MAX_LINE_BYTES = 64 * 1024;

const id = z.string().min(1).max(512);

export const controlRequest = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('list'), status: z.enum(APPROVAL_STATUSES as [string, ...string[]]).optional() }),
  z.strictObject({ op: z.literal('get'), id }),
  z.strictObject({
    op: z.literal('decide'),
    id,
    decision: z.enum(['grant', 'deny']),
    as: z.string().min(1).max(512),
    /** The approver's token, required when their `[[approvals.approvers]]` entry has one. */
    token: z.string().min(1).max(4096).optional(),
    note: z.string().max(4096).optional(),
  }),
]);

export type ControlRequest = z.infer<typeof controlRequest>;

/** `ok: false` carries an ApprovalError code, or STORE_UNAVAILABLE / BAD_REQUEST / INTERNAL. */
export type ControlResponse =
  | { ok: true; requests: unknown[] }
  | { ok: true; request: unknown }
  | { ok: false; code: string; message: string };

/** The socket of the proxy with process id `pid`. */
export function socketName(pid: number): string {
  return `${pid}.sock`;
}
