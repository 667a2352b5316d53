import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { AuditLog, readAuditLog, verifyAuditLog, type ApprovalRecord, type AuditRecord } from '../../src/audit/index.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import type { PermitClaims } from '../../src/crypto/index.ts';
import type { Principal } from '../../src/engine/context.ts';
import { Gate } from '../../src/engine/gate.ts';
import type { GateDecision } from '../../src/adapters/shared.ts';

/** Shared by the adapters' approval tests: refunds under 500 run; 500 or more wait for finance. */
export const APPROVAL_POLICY = {
  policy: [
    { name: 'small_refunds', effect: 'permit', conditions: [{ action: 'refund' }, { param_max: { field: 'amount', max: 499 } }] },
    {
      name: 'big_refunds_need_a_human',
      description: 'refunds of 500 or more',
      effect: 'approve',
      conditions: [{ action: 'refund' }, { param_min: { field: 'amount', min: 500 } }],
      approval: { approvers: ['role:finance'] },
    },
  ],
};

export const financeLead: Principal = { id: 'fiona', kind: 'user', roles: ['finance'] };
export const intern: Principal = { id: 'ivan', kind: 'user', roles: ['support'] };

let keys: KeyPair | undefined;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

export interface ApprovalRig {
  gate: Gate;
  /** Every decision the adapter reported (onDecision). */
  decisions: GateDecision[];
  onDecision: (d: GateDecision) => void;
  /** The claims of the signed permit of the one permitted decision for `args`. */
  permitClaims(args: Record<string, unknown>): Promise<PermitClaims>;
  /** Closes gate and log, verifies the log, and returns its approval records as `event:status`. */
  finish(): Promise<{ approvals: string[]; records: number }>;
}

/** A gate with the approval policy, a permit signer and an audit log (verified at the end). */
export async function approvalRig(): Promise<ApprovalRig> {
  keys ??= KeyPair.generate();
  const kp = keys;
  const dir = mkdtempSync(join(tmpdir(), 'kavach-adapter-approvals-'));
  dirs.push(dir);
  const path = join(dir, 'audit.jsonl');
  const log = await AuditLog.open(path, { keyPair: kp, mode: 'hybrid' });
  const gate = Gate.fromDict(APPROVAL_POLICY, { drift: false, audit: log, signer: PermitSigner.fromKeyPair(kp, { mode: 'hybrid' }) });
  const decisions: GateDecision[] = [];
  return {
    gate,
    decisions,
    onDecision: (d) => void decisions.push(d),
    async permitClaims(args) {
      const permits = decisions.filter(
        (d) => d.allowed && d.verdict.kind === 'permit' && JSON.stringify(d.params) === JSON.stringify(args),
      );
      if (permits.length !== 1) throw new Error(`expected one permit for ${JSON.stringify(args)}, got ${permits.length}`);
      const verdict = permits[0]?.verdict;
      const token = verdict?.kind === 'permit' ? verdict.permit : undefined;
      if (!token) throw new Error('the permit is not signed');
      return new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid' }).verify(token, { action: 'refund', args });
    },
    async finish() {
      await gate.close();
      await log.close();
      const report = await verifyAuditLog(path, kp.publicKeys());
      const records: AuditRecord[] = (await readAuditLog(path, { keys: kp.publicKeys() })).records;
      const approvals = records.filter((r): r is ApprovalRecord => r.type === 'approval').map((r) => `${r.event}:${r.status}`);
      return { approvals, records: report.records };
    },
  };
}
