import { z } from 'zod';
import { parseDuration } from '../duration.ts';
import { PolicyError } from '../errors.ts';
import { parseAt } from './schema.ts';
import { duration } from './value-schemas.ts';

/** An approve policy's `approval` table, defaults filled in (DESIGN §11). */
export interface ApprovalRule {
  /** `role:NAME` or `id:PRINCIPAL`; empty: any principal but the caller. */
  approvers: readonly string[];
  /** Distinct approvers who must grant. */
  quorum: number;
  /** How long a request waits for its decision. */
  timeoutMs: number;
  /** How long a grant can be used, from the moment it was granted. */
  grantTtlMs: number;
  /** How many times the granted call is permitted. */
  uses: number;
}

export const APPROVAL_DEFAULTS = { timeout: '15m', grant_ttl: '5m', quorum: 1, uses: 1 } as const;

const approverProblem = (v: string): string | undefined => {
  const m = /^(role|id):(.+)$/s.exec(v);
  if (!m) return `"${v}" must be "role:NAME" or "id:PRINCIPAL"`;
  if ((m[2] as string).trim() !== m[2]) return `"${v}" has spaces around its name`;
  return undefined;
};
const approvalTableSchema = z.strictObject({
  approvers: z
    .array(
      z
        .string()
        .max(512)
        .superRefine((v, ctx) => {
          const p = approverProblem(v);
          if (p) ctx.addIssue({ code: 'custom', message: p });
        }),
    )
    .max(1_000)
    .optional(),
  quorum: z.number().int().min(1).max(1_000).optional(),
  timeout: duration.optional(),
  grant_ttl: duration.optional(),
  uses: z.number().int().min(1).max(1_000_000).optional(),
});

/** Reads an `approval` table (absent: every default) at `path`; a table that cannot be met is a PolicyError. */
export function parseApprovalTable(raw: unknown, path: string): ApprovalRule {
  const table = raw === undefined ? {} : parseAt(approvalTableSchema, raw, path);
  const approvers = [...new Set(table.approvers ?? [])];
  const quorum = table.quorum ?? APPROVAL_DEFAULTS.quorum;
  // Only named principals can be counted: a quorum above them could never be reached.
  if (approvers.length > 0 && approvers.every((a) => a.startsWith('id:')) && quorum > approvers.length) {
    throw new PolicyError(
      `${path}.quorum`,
      `${quorum} distinct approvers can never grant: only ${approvers.length} ${approvers.length === 1 ? 'is' : 'are'} listed`,
    );
  }
  return {
    approvers,
    quorum,
    timeoutMs: parseDuration(table.timeout ?? APPROVAL_DEFAULTS.timeout),
    grantTtlMs: parseDuration(table.grant_ttl ?? APPROVAL_DEFAULTS.grant_ttl),
    uses: table.uses ?? APPROVAL_DEFAULTS.uses,
  };
}
