import { createHash, timingSafeEqual } from 'node:crypto';
import { mayDecide } from '../../engine/approvals/binding.ts';
import type { ApprovalRequest } from '../../engine/approvals/types.ts';
import type { Principal } from '../../engine/context.ts';
import type { Gate } from '../../engine/gate.ts';
import type { ApprovalsConfig, ApproverConfig, PrincipalConfig } from '../config.ts';

/**
 * Who decides, on each channel. The engine refuses SELF_APPROVAL when the approver's id is the
 * caller's, and the caller behind a stdio client is the agent the human is running: the human
 * answering that client's elicitation is a principal of their own, `<caller>#user` (kind user, no
 * roles) unless the config names them (`[approvals] client_approver`, `[[http.clients]] approver`),
 * in which case an `[[approvals.approvers]]` entry of that id gives their kind and roles.
 */
export function humanAtClient(
  approvals: ApprovalsConfig,
  caller: PrincipalConfig & { approver?: string },
  stdioIdentity: PrincipalConfig | undefined,
): Principal {
  const named =
    caller.approver ??
    (stdioIdentity !== undefined && caller.principalId === stdioIdentity.principalId ? approvals.clientApprover : undefined);
  if (named !== undefined) return namedApprover(approvals, named);
  return { id: `${caller.principalId}#user`, kind: 'user', roles: [] };
}

/** The person the config names at a client: the `[[approvals.approvers]]` entry of that id, else a plain user without roles. */
export function namedApprover(approvals: ApprovalsConfig, id: string): Principal {
  const entry = approvals.approvers.find((a) => a.principalId === id);
  return entry ? principalOf(entry) : { id, kind: 'user', roles: [] };
}

/** Where `kavach approvals grant|deny` reads the deciding approver's token from (never the command line, which `ps` shows). */
export const APPROVER_TOKEN_ENV = 'KAVACH_APPROVER_TOKEN';

/**
 * The approver a decision names on a channel where the name is only claimed (the socket, the CLI
 * over Redis): whoever opens the socket runs as the proxy's OS user, as an agent with a shell
 * often does too. An approver with a token counts only with that token; one without is taken on
 * the name alone (docs/approvals.md says when that is enough).
 */
export function claimedApprover(
  approvals: ApprovalsConfig,
  id: string,
  token: string | undefined,
): { approver: Principal } | { refused: string } {
  const entry = approvals.approvers.find((a) => a.principalId === id);
  if (entry?.token !== undefined && (token === undefined || !timingSafeEqual(sha256(entry.token), sha256(token))))
    return {
      refused: `'${id}' decides with their approver token: set ${APPROVER_TOKEN_ENV} to it (the name alone does not count for an approver who has one)`,
    };
  return { approver: entry ? principalOf(entry) : { id, kind: 'user', roles: [] } };
}

export function principalOf(entry: ApproverConfig): Principal {
  return { id: entry.principalId, kind: entry.principalKind, roles: [...entry.roles] };
}

/** The approvers a bearer token names (compared in constant time against every token). */
export function approverByToken(approvals: ApprovalsConfig): (token: string) => Principal | undefined {
  const tokens = approvals.approvers.filter((a) => a.token !== undefined).map((a) => ({ digest: sha256(a.token as string), approver: a }));
  return (token) => {
    const digest = sha256(token);
    let found: ApproverConfig | undefined;
    for (const t of tokens) if (timingSafeEqual(t.digest, digest)) found = t.approver;
    return found ? principalOf(found) : undefined;
  };
}

/**
 * Whether `approver` could decide `request` under the policy now in force (not their own call,
 * listed among its approvers). The gate checks again when deciding; this only spares a person a
 * question whose answer could not count.
 */
export function couldDecide(gate: Gate, request: ApprovalRequest, approver: Principal): boolean {
  if (approver.id === request.principal.id) return false;
  const rule = gate.policies.policies.find((p) => p.name === request.policy)?.approval;
  return rule === undefined || mayDecide(rule.approvers, approver);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
