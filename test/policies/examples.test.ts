import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Gate, type ActionContext, type GateOptions } from '../../src/engine/index.ts';
import { globReadingWarnings } from '../../src/engine/policy/glob-readings.ts';
import { parsePolicyText } from '../../src/engine/policy/load.ts';

const DIR = join(import.meta.dirname, '..', '..', 'policies');
// Thursday 2026-01-15, 11:00 in India (05:30 UTC).
const OFFICE_HOURS = Date.UTC(2026, 0, 15, 5, 30);
const NIGHT = Date.UTC(2026, 0, 15, 18, 0);

async function load(file: string, opts: GateOptions = {}): Promise<Gate> {
  return Gate.fromFile(join(DIR, file), { drift: false, clock: () => OFFICE_HOURS, ...opts });
}

async function outcome(gate: Gate, c: Partial<ActionContext> & Pick<ActionContext, 'actionName'>): Promise<string> {
  const v = await gate.evaluate({ principalId: 'agent-7', principalKind: 'agent', ...c });
  return v.kind === 'refuse' ? v.code : v.kind === 'permit' ? `permit:${v.policy}` : v.kind;
}

describe('every file in policies/ loads', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.toml') || f.endsWith('.json'));
  it.each(files)('%s', async (file) => {
    const gate = await load(file);
    expect(gate.policyCount).toBeGreaterThanOrEqual(0);
    // Shipped files read the same here and in Kavach: policy check has nothing to warn about.
    const text = readFileSync(join(DIR, file), 'utf8');
    expect(globReadingWarnings(parsePolicyText(text, file.endsWith('.json') ? 'json' : 'toml'))).toEqual([]);
  });
});

describe('policies/refund-agent.toml', () => {
  const refunder = { principalId: 'refund-bot', roles: ['refunds'] };
  // The application vouches for the customer in the resource, from its own records.
  const refund = (amount: unknown, extra: Record<string, unknown> = {}) => ({
    ...refunder,
    actionName: 'payments.refund',
    resource: 'customers/established/c-1',
    params: { amount, currency: 'INR', ...extra },
  });

  it('permits small agent refunds and order lookups', async () => {
    const gate = await load('refund-agent.toml');
    expect(await outcome(gate, refund(120))).toBe('permit:agent_refunds');
    expect(await outcome(gate, { ...refunder, actionName: 'payments.orders.get', params: { id: 'o-1' } })).toBe('permit:read_orders');
  });

  it('refuses refunds over the per-call cap, zero or negative, in other currencies, or without the role', async () => {
    const gate = await load('refund-agent.toml');
    expect(await outcome(gate, refund(501))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, refund(0))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, refund(-50))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, refund('100'))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, refund(100, { currency: 'BTC' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, { ...refund(100), roles: ['support'] })).toBe('NO_POLICY_MATCH');
  });

  it('refuses refunds to customers the application does not vouch for, whoever asks and whatever the model claims', async () => {
    const gate = await load('refund-agent.toml');
    const supervisor = { principalId: 'asha', principalKind: 'user' as const, roles: ['supervisor'] };
    for (const standing of ['new', 'card_changed', 'unknown']) {
      expect(await outcome(gate, { ...refund(100), resource: `customers/${standing}/c-1` })).toBe('POLICY_DENIED');
      expect(await outcome(gate, { ...refund(100), ...supervisor, resource: `customers/${standing}/c-1` })).toBe('POLICY_DENIED');
    }
    // The model's own account of the customer decides nothing: left out, or written to look fine.
    for (const customer of [undefined, { account_age_days: 400, card_changed_today: false }]) {
      expect(await outcome(gate, { ...refund(100, { customer }), resource: undefined })).toBe('POLICY_DENIED');
    }
    expect(await outcome(gate, refund(100, { customer: { account_age_days: 1, card_changed_today: true } }))).toBe('permit:agent_refunds');
  });

  it('caps an agent at 5000 a day across calls (RATE_LIMITED with a retry time)', async () => {
    const gate = await load('refund-agent.toml');
    for (let i = 0; i < 10; i++) expect(await outcome(gate, refund(500))).toBe('permit:agent_refunds');
    const v = await gate.evaluate({ principalKind: 'agent', ...refund(1) });
    expect(v).toMatchObject({ kind: 'refuse', code: 'RATE_LIMITED', policy: 'agent_refunds' });
    expect(v.kind === 'refuse' && v.retryAfterMs).toBeGreaterThan(0);
  });

  it('lets supervisors refund large amounts in office hours only', async () => {
    const supervisor = { principalId: 'asha', principalKind: 'user' as const, roles: ['supervisor'] };
    expect(await outcome(await load('refund-agent.toml'), { ...refund(20_000), ...supervisor })).toBe('permit:supervisor_refunds');
    const night = await load('refund-agent.toml', { clock: () => NIGHT });
    expect(await outcome(night, { ...refund(20_000), ...supervisor })).toBe('NO_POLICY_MATCH');
  });

  it('never permits a payout, even to a principal a policy would otherwise let through', async () => {
    const gate = await load('refund-agent.toml');
    expect(await outcome(gate, { ...refunder, actionName: 'payments.payout', params: { amount: 1 } })).toBe('NO_POLICY_MATCH');
    gate.reload(`${readFileSync(join(DIR, 'refund-agent.toml'), 'utf8')}
[[policy]]
name = "oops_everything"
effect = "permit"
conditions = []
`);
    expect(await outcome(gate, { ...refunder, actionName: 'payments.payout', params: { amount: 1 } })).toBe('INVARIANT_VIOLATION');
    expect(await outcome(gate, { ...refunder, actionName: 'payments.transfer_funds', params: {} })).toBe('INVARIANT_VIOLATION');
  });
});

describe('policies/support-agent.json', () => {
  const support = { principalId: 'helper-1', roles: ['support'] };

  it('permits reading and answering tickets, emailing customers and fetching help pages', async () => {
    const gate = await load('support-agent.json');
    expect(await outcome(gate, { ...support, actionName: 'helpdesk.tickets.list', params: {} })).toBe('permit:support_ticket_reads');
    expect(await outcome(gate, { ...support, actionName: 'helpdesk.tickets.comment', params: { id: 4, body: 'Hello!' } })).toBe(
      'permit:support_tickets',
    );
    expect(await outcome(gate, { ...support, actionName: 'mail.send', params: { to: 'ravi@customers.example.com', body: 'Fixed.' } })).toBe(
      'permit:support_email',
    );
    expect(await outcome(gate, { ...support, actionName: 'web.fetch', params: { url: 'https://help.example.com/refunds' } })).toBe(
      'permit:support_docs',
    );
    expect(await outcome(gate, { ...support, actionName: 'web.fetch', params: { url: 'https://api.docs.example.com/x' } })).toBe(
      'permit:support_docs',
    );
  });

  it('refuses mail outside the customer domain, oversize bodies and off-list URLs', async () => {
    const gate = await load('support-agent.json');
    for (const to of [
      'eve@evil.net',
      'ravi@customers.example.com.evil.net',
      ['ravi@customers.example.com'],
      // A recipient list, in the spellings mail libraries split on, must not ride in on its last address.
      'attacker@evil.com, alice@customers.example.com',
      'attacker@evil.com,alice@customers.example.com',
      'attacker@evil.com;alice@customers.example.com',
      'Eve <eve@evil.com> alice@customers.example.com',
      '@evil.com:alice@customers.example.com',
      'eve%evil.com@customers.example.com',
      'evil!eve@customers.example.com',
      'x\r\nBcc: eve@evil.com\r\nTo: a@customers.example.com',
      'root alice@customers.example.com',
      'root\talice@customers.example.com',
      'root\u3000alice@customers.example.com',
      `${'a'.repeat(300)}@customers.example.com`,
    ]) {
      expect(await outcome(gate, { ...support, actionName: 'mail.send', params: { to, body: 'x' } })).toBe('NO_POLICY_MATCH');
    }
    expect(await outcome(gate, { ...support, actionName: 'helpdesk.tickets.comment', params: { body: 'x'.repeat(4001) } })).toBe(
      'NO_POLICY_MATCH',
    );
    for (const url of [
      'http://help.example.com/',
      'https://help.example.com@evil.net/',
      'https://docs.example.com/',
      'https://evil.net/help.example.com',
    ]) {
      expect(await outcome(gate, { ...support, actionName: 'web.fetch', params: { url } })).toBe('NO_POLICY_MATCH');
    }
  });

  it('limits email to 30 a day per agent', async () => {
    const gate = await load('support-agent.json');
    const mail = { ...support, actionName: 'mail.send', params: { to: 'a@customers.example.com', body: 'hi' } };
    for (let i = 0; i < 30; i++) expect(await outcome(gate, mail)).toBe('permit:support_email');
    expect(await outcome(gate, mail)).toBe('RATE_LIMITED');
  });

  it('closes ordinary tickets in a session, never VIP ones, and never exports in bulk', async () => {
    const gate = await load('support-agent.json');
    // The tier is the application's (from its ticket records, in the resource), never the model's.
    const close = (tier: string | undefined, claimed = 'standard') => ({
      ...support,
      sessionId: 'shift-1',
      actionName: 'helpdesk.tickets.close',
      resource: tier && `helpdesk/tickets/${tier}/9`,
      params: { ticket: { id: 9, tier: claimed } },
    });
    expect(await outcome(gate, close('standard'))).toBe('permit:support_close');
    expect(await outcome(gate, close('vip'))).toBe('POLICY_DENIED');
    expect(await outcome(gate, close('enterprise', 'standard'))).toBe('POLICY_DENIED');
    expect(await outcome(gate, close(undefined, 'standard'))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, { ...close('standard'), sessionId: undefined })).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, { ...support, actionName: 'helpdesk.customers.export_csv', params: {} })).toBe('POLICY_DENIED');
  });
});

describe('policies/filesystem-agent.toml', () => {
  const fs = (actionName: string, params: Record<string, unknown>) => ({ actionName, sessionId: 'dev-1', params });

  it('permits reads, writes and moves inside the workspace and deletes only in tmp', async () => {
    const gate = await load('filesystem-agent.toml');
    expect(await outcome(gate, fs('fs.read', { path: '/srv/agent/workspace/src/main.ts' }))).toBe('permit:read_workspace');
    expect(await outcome(gate, fs('fs.list', { path: '/srv/agent/docs' }))).toBe('permit:read_workspace');
    expect(await outcome(gate, fs('fs.write', { path: '/srv/agent/workspace/out.txt', content: 'hi' }))).toBe('permit:write_workspace');
    expect(await outcome(gate, fs('fs.move', { source: '/srv/agent/workspace/a', destination: '/srv/agent/workspace/b' }))).toBe(
      'permit:move_in_workspace',
    );
    expect(await outcome(gate, fs('fs.delete', { path: '/srv/agent/workspace/tmp/x' }))).toBe('permit:delete_scratch_only');
    expect(await outcome(gate, fs('fs.delete', { path: '/srv/agent/workspace/src/main.ts' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, fs('fs.write', { path: '/srv/agent/docs/readme.md', content: 'x' }))).toBe('NO_POLICY_MATCH');
  });

  it.each([
    '/srv/agent/workspace/../../etc/passwd',
    '/srv/agent/workspace-evil/x',
    '/srv/agent/workspace/%2e%2e/x',
    '/srv/agent/workspace\\..\\x',
    'src/main.ts',
    '~/.bashrc',
    '/etc/shadow',
  ])('refuses the escape %j', async (path) => {
    const gate = await load('filesystem-agent.toml');
    expect(await outcome(gate, fs('fs.read', { path }))).toBe('NO_POLICY_MATCH');
  });

  it.each([
    '/srv/agent/workspace/.env',
    '/srv/agent/workspace/.env.production',
    '/srv/agent/workspace/app/.ssh/id_ed25519',
    '/srv/agent/workspace/.git/config',
    '/srv/agent/workspace/certs/server.pem',
  ])('refuses the secret %j', async (path) => {
    const gate = await load('filesystem-agent.toml');
    expect(await outcome(gate, fs('fs.read', { path }))).toBe('POLICY_DENIED');
  });

  it.each([
    '/srv/agent/workspace/.env/',
    '/srv/agent/workspace/.env/.',
    '/srv/agent/workspace/.env//',
    '/srv/agent/workspace//.env',
    '/srv/agent/workspace/./.env',
    '/srv/agent/workspace/.ssh/./id_ed25519',
  ])('the secret globs cannot be dodged by spelling %j differently', async (path) => {
    const gate = await load('filesystem-agent.toml');
    expect(await outcome(gate, fs('fs.read', { path }))).not.toMatch(/^permit/);
  });

  it('refuses moving a secret out, or planting into .git', async () => {
    const gate = await load('filesystem-agent.toml');
    expect(await outcome(gate, fs('fs.move', { source: '/srv/agent/workspace/.env', destination: '/srv/agent/workspace/env.txt' }))).toBe(
      'POLICY_DENIED',
    );
    expect(
      await outcome(gate, fs('fs.move', { source: '/srv/agent/workspace/x', destination: '/srv/agent/workspace/.git/hooks/pre-commit' })),
    ).toBe('POLICY_DENIED');
  });

  it.each([
    ['.env.local as the source', '/srv/agent/workspace/.env.local', '/srv/agent/workspace/env.txt'],
    ['.git/config as the source', '/srv/agent/workspace/.git/config', '/srv/agent/workspace/config.txt'],
    ['a server.pem destination', '/srv/agent/workspace/notes.md', '/srv/agent/workspace/server.pem'],
    ['.git itself as the source (rename, edit config, rename back)', '/srv/agent/workspace/.git', '/srv/agent/workspace/gitdir'],
    ['.git itself as the destination', '/srv/agent/workspace/gitdir', '/srv/agent/workspace/.git'],
    ['.ssh itself as the source', '/srv/agent/workspace/.ssh', '/srv/agent/workspace/keys'],
  ])('judges both ends of a move: refuses %s', async (_what, source, destination) => {
    const gate = await load('filesystem-agent.toml');
    expect(await outcome(gate, fs('fs.move', { source, destination }))).toBe('POLICY_DENIED');
    // Without the second-line refuse, the allow-lists alone still refuse it.
    const text = readFileSync(join(DIR, 'filesystem-agent.toml'), 'utf8');
    const permitsOnly = await Gate.fromToml(text.slice(0, text.indexOf('# A second line')), { drift: false });
    expect(await outcome(permitsOnly, fs('fs.move', { source, destination }))).toBe('NO_POLICY_MATCH');
  });

  it('keeps the .git directory itself out of lists and writes', async () => {
    const gate = await load('filesystem-agent.toml');
    expect(await outcome(gate, fs('fs.list', { path: '/srv/agent/workspace/.git' }))).toBe('POLICY_DENIED');
    expect(await outcome(gate, fs('fs.delete', { path: '/srv/agent/workspace/tmp/.git' }))).toBe('POLICY_DENIED');
  });

  it('never allows permission changes', async () => {
    const gate = await load('filesystem-agent.toml');
    gate.reload(
      `${readFileSync(join(DIR, 'filesystem-agent.toml'), 'utf8')}\n[[policy]]\nname = "all"\neffect = "permit"\nconditions = []\n`,
    );
    expect(await outcome(gate, fs('fs.chmod', { path: '/srv/agent/workspace/x', mode: '777' }))).toBe('INVARIANT_VIOLATION');
  });
});

describe('examples/agents/policies/file-assistant.toml', () => {
  it('keeps reads and writes out of .git (itself and below), env files and keys', async () => {
    const gate = await Gate.fromFile(join(DIR, '..', 'examples', 'agents', 'policies', 'file-assistant.toml'), { drift: false });
    const call = (actionName: string, path: string) => ({ actionName, params: { path, content: 'x' } });
    expect(await outcome(gate, call('write_file', '/workspace/notes.md'))).toBe('permit:workspace_writes');
    for (const path of ['/workspace/.git/config', '/workspace/.git', '/workspace/app/.env.local', '/workspace/server.pem']) {
      expect(await outcome(gate, call('write_file', path)), path).toBe('NO_POLICY_MATCH');
      expect(await outcome(gate, call('read_file', path)), path).toBe('NO_POLICY_MATCH');
    }
  });
});

describe('policies/kill-switch.toml', () => {
  it('refuses every call when loaded', async () => {
    const gate = await load('kill-switch.toml');
    expect(gate.policyCount).toBe(0);
    expect(await outcome(gate, { actionName: 'payments.orders.get' })).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, { actionName: 'anything', principalKind: 'user', roles: ['admin'] })).toBe('NO_POLICY_MATCH');
  });

  it('stops a running gate when swapped in, and the old policy comes back on reload', async () => {
    const gate = await load('refund-agent.toml');
    const lookup = { principalId: 'refund-bot', actionName: 'payments.orders.get', params: {} };
    expect(await outcome(gate, lookup)).toBe('permit:read_orders');
    gate.reload(readFileSync(join(DIR, 'kill-switch.toml'), 'utf8'));
    expect(await outcome(gate, lookup)).toBe('NO_POLICY_MATCH');
    gate.reload(readFileSync(join(DIR, 'refund-agent.toml'), 'utf8'));
    expect(await outcome(gate, lookup)).toBe('permit:read_orders');
  });
});
