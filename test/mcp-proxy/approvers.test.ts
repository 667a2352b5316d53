import { describe, expect, it } from 'vitest';
import { approverByToken, humanAtClient, namedApprover } from '../../src/mcp-proxy/approvals/approvers.ts';
import { parseConfig } from '../../src/mcp-proxy/config.ts';

const TOKEN = 'alice-approver-token-0123456789';

function approvals(extra: Record<string, unknown> = {}) {
  return parseConfig({
    gate: { policy: 'p.toml' },
    servers: { fs: { command: 'x' } },
    approvals: {
      approvers: [
        { principal_id: 'alice', roles: ['fs-owner'], token: TOKEN },
        { principal_id: 'ops', principal_kind: 'service' },
      ],
      ...extra,
    },
  }).approvals;
}

const AGENT = { principalId: 'alice-laptop', principalKind: 'agent' as const, roles: ['dev'] };

describe('who decides on each channel', () => {
  it("the person at a stdio client is <caller>#user, a user without the agent's roles", () => {
    expect(humanAtClient(approvals(), AGENT, AGENT)).toEqual({ id: 'alice-laptop#user', kind: 'user', roles: [] });
  });

  it('client_approver names them, with the kind and roles of their approvers entry', () => {
    expect(humanAtClient(approvals({ client_approver: 'alice' }), AGENT, AGENT)).toEqual({
      id: 'alice',
      kind: 'user',
      roles: ['fs-owner'],
    });
    expect(humanAtClient(approvals({ client_approver: 'carol' }), AGENT, AGENT)).toEqual({ id: 'carol', kind: 'user', roles: [] });
  });

  it('an HTTP client names its own person; client_approver is for the stdio identity only', () => {
    const ci = { ...AGENT, principalId: 'ci-bot', token: 'x'.repeat(16) };
    expect(humanAtClient(approvals({ client_approver: 'alice' }), ci, AGENT)).toEqual({ id: 'ci-bot#user', kind: 'user', roles: [] });
    expect(humanAtClient(approvals(), { ...ci, approver: 'ops' }, AGENT)).toEqual({ id: 'ops', kind: 'service', roles: [] });
  });

  it('--as takes the roles of the entry of that id, none otherwise; tokens name their approver', () => {
    expect(namedApprover(approvals(), 'alice')).toEqual({ id: 'alice', kind: 'user', roles: ['fs-owner'] });
    expect(namedApprover(approvals(), 'mallory')).toEqual({ id: 'mallory', kind: 'user', roles: [] });
    const byToken = approverByToken(approvals());
    expect(byToken(TOKEN)?.id).toBe('alice');
    expect(byToken(`${TOKEN}x`)).toBeUndefined();
    expect(byToken('')).toBeUndefined();
  });
});
