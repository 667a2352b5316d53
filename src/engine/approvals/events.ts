import type { Principal, PrincipalKind } from '../context.ts';
import type { ApprovalEvent } from '../ports.ts';
import type { ApprovalDecision, ApprovalStatus } from './types.ts';

/** What an approval audit record names: the request and the call it is bound to. */
export interface ApprovalSubject {
  id: string;
  policy: string;
  principal: { id: string; kind: PrincipalKind };
  action: string;
  resource?: string;
  audience?: string;
  sessionId?: string;
  argsHash: string;
}

export function approvalEvent(
  subject: ApprovalSubject,
  event: ApprovalEvent['event'],
  status: ApprovalStatus,
  time: number,
  extra: { evaluationId?: string; decision?: ApprovalDecision; expiresAt?: number } = {},
): ApprovalEvent {
  const e: ApprovalEvent = {
    type: 'approval',
    time,
    event,
    approval: subject.id,
    status,
    policy: subject.policy,
    principal: subject.principal.id,
    principalKind: subject.principal.kind,
    action: subject.action,
    args: subject.argsHash,
  };
  if (subject.resource !== undefined) e.resource = subject.resource;
  if (subject.audience !== undefined) e.audience = subject.audience;
  if (subject.sessionId !== undefined) e.session = subject.sessionId;
  if (extra.evaluationId !== undefined) e.evaluationId = extra.evaluationId;
  if (extra.expiresAt !== undefined) e.expiresAt = extra.expiresAt;
  const d = extra.decision;
  if (d) {
    e.approver = d.approver.id;
    e.approverKind = d.approver.kind;
    if (d.approver.roles !== undefined && d.approver.roles.length > 0) e.approverRoles = [...d.approver.roles];
    if (d.note !== undefined) e.note = d.note;
  }
  return e;
}

/** A copy of an approver with only the fields a Principal has. */
export function approverOf(p: Principal): Principal {
  const out: Principal = { id: p.id, kind: p.kind };
  if (p.roles !== undefined) out.roles = [...p.roles];
  return out;
}
