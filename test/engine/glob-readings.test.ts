// Kavach reads a trailing `.*` as a bare prefix and principal ids exactly (DESIGN §5): a Kavach
// file must never get weaker here, so refusals take the broader reading, permits the narrower.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run as policyCli } from '../../src/cli/policy.ts';
import { Gate, parsePolicyDocument } from '../../src/engine/index.ts';
import { broadPattern, compileGlob, compileGlobsAs, readingsDisagreeOn } from '../../src/engine/glob.ts';
import { globReadingWarnings } from '../../src/engine/policy/glob-readings.ts';
import { ctx, outcome } from './helpers.ts';

const gate = (policies: object[], invariants: object[] = []) => Gate.fromDict({ policies, invariants }, { drift: false });
const everything = { name: 'everything', effect: 'permit', conditions: [] };
const as = (actionName: string, principalId = 'bot') => ctx({ principalId, actionName });

describe('action globs: refusals take the broader reading, permits the narrower', () => {
  it('an imported Kavach refuse on "delete.*" refuses delete_user and delete', async () => {
    const g = gate([everything, { name: 'no_deletes', effect: 'refuse', conditions: [{ action: 'delete.*' }] }]);
    for (const a of ['delete.user', 'delete_user', 'delete']) expect(await outcome(g, as(a)), a).toBe('POLICY_DENIED');
    expect(await outcome(g, as('undelete'))).toBe('permit');
  });

  it('a permit on "refund.*" permits refund.create, not refunds', async () => {
    const g = gate([{ name: 'refunds', effect: 'permit', conditions: [{ action: 'refund.*' }] }]);
    expect(await outcome(g, as('refund.create'))).toBe('permit');
    expect(await outcome(g, as('refunds'))).toBe('NO_POLICY_MATCH');
    expect(await outcome(g, as('refund'))).toBe('NO_POLICY_MATCH');
  });

  it('an approve policy takes the narrower reading, as a permit does', async () => {
    const g = gate([{ name: 'ask', effect: 'approve', conditions: [{ action: 'refund.*' }] }]);
    expect(await outcome(g, as('refund.create'))).toBe('APPROVAL_REQUIRED');
    expect(await outcome(g, as('refunds'))).toBe('NO_POLICY_MATCH');
    expect(
      globReadingWarnings(parsePolicyDocument({ policies: [{ name: 'ask', effect: 'approve', conditions: [{ action: 'refund.*' }] }] })),
    ).toEqual([expect.stringMatching(/policy 'ask' \(approve\).*does not admit "refunds"/)]);
  });

  it('inside not the reading flips: a permit of "not delete.*" does not admit delete_user', async () => {
    const permit = gate([{ name: 'but_deletes', effect: 'permit', conditions: [{ not: { action: 'delete.*' } }] }]);
    expect(await outcome(permit, as('delete_user'))).toBe('NO_POLICY_MATCH');
    expect(await outcome(permit, as('read'))).toBe('permit');
    const refuse = gate([everything, { name: 'only_refunds', effect: 'refuse', conditions: [{ not: { action: 'refund.*' } }] }]);
    expect(await outcome(refuse, as('refunds'))).toBe('POLICY_DENIED');
    expect(await outcome(refuse, as('refund.create'))).toBe('permit');
  });

  it('resource globs follow the same rule', async () => {
    const g = gate([
      { name: 'orders', effect: 'permit', conditions: [{ resource: 'orders.*' }] },
      { name: 'no_admin', effect: 'refuse', conditions: [{ resource: 'admin.*' }] },
    ]);
    expect(await outcome(g, ctx({ actionName: 'r', resource: 'orders.1' }))).toBe('permit');
    expect(await outcome(g, ctx({ actionName: 'r', resource: 'orders_all' }))).toBe('NO_POLICY_MATCH');
    const all = gate([everything, { name: 'no_admin', effect: 'refuse', conditions: [{ resource: 'admin.*' }] }]);
    expect(await outcome(all, ctx({ actionName: 'r', resource: 'admin_panel' }))).toBe('POLICY_DENIED');
  });

  it('invariants: blocked_actions and an invariant scope reach the bare prefix, allowed_actions does not', async () => {
    const blocked = gate([everything], [{ name: 'no_payouts', blocked_actions: ['payments.payout.*'] }]);
    expect(await outcome(blocked, as('payments.payout_now'))).toBe('INVARIANT_VIOLATION');
    const allowed = gate([everything], [{ name: 'fs_only', allowed_actions: ['fs.*'] }]);
    expect(await outcome(allowed, as('fs.read'))).toBe('permit');
    expect(await outcome(allowed, as('fsx'))).toBe('INVARIANT_VIOLATION');
    const scoped = gate([everything], [{ name: 'cap', actions: ['refund.*'], param_max: { field: 'amount', max: 10 } }]);
    expect(await outcome(scoped, ctx({ actionName: 'refunds', params: { amount: 50 } }))).toBe('INVARIANT_VIOLATION');
  });
});

describe('identity_id: Kavach compares ids exactly', () => {
  it('a * is literal where it permits, a glob where it refuses', async () => {
    const permit = gate([{ name: 'bots', effect: 'permit', conditions: [{ identity_id: 'bot-*' }] }]);
    expect(await outcome(permit, as('x', 'bot-1'))).toBe('NO_POLICY_MATCH');
    expect(await outcome(permit, as('x', 'bot-*'))).toBe('permit');
    const refuse = gate([everything, { name: 'no_bots', effect: 'refuse', conditions: [{ identity_id: 'bot-*' }] }]);
    expect(await outcome(refuse, as('x', 'bot-1'))).toBe('POLICY_DENIED');
    expect(await outcome(refuse, as('x', 'alice'))).toBe('permit');
    const notBots = gate([{ name: 'people', effect: 'permit', conditions: [{ not: { identity_id: 'bot-*' } }] }]);
    expect(await outcome(notBots, as('x', 'bot-1'))).toBe('NO_POLICY_MATCH');
  });
});

describe('the two readings (fast-check)', () => {
  const piece = fc.constantFrom('a', 'b', '.', '*', '_', 'refund');
  const patternArb = fc.array(piece, { minLength: 1, maxLength: 5 }).map((ps) => ps.join('').replace(/\*\*+/g, '*'));
  const value = fc.array(fc.constantFrom('a', 'b', '.', '_', 'refund', 's'), { maxLength: 6 }).map((ps) => ps.join(''));

  it('narrow is our glob; broad is our glob or Kavach prefix reading, and never less than narrow', () => {
    fc.assert(
      fc.property(patternArb, value, (p, v) => {
        const narrow = compileGlobsAs([p], 'narrow')(v);
        const broad = compileGlobsAs([p], 'broad')(v);
        expect(narrow).toBe(compileGlob(p)(v));
        const kavach = compileGlob(p.endsWith('.*') ? `${p.slice(0, -2)}*` : p)(v); // the bare prefix (a glob before it)
        expect(broad).toBe(narrow || kavach);
      }),
      { numRuns: 3000 },
    );
  });

  it('the example the readings disagree on is matched by the broad reading only', () => {
    fc.assert(
      fc.property(patternArb, (p) => {
        const ex = readingsDisagreeOn(p);
        if (!p.endsWith('.*')) {
          expect(ex).toBeUndefined();
          return;
        }
        expect(ex).toBeDefined();
        expect(compileGlob(broadPattern(p))(ex as string)).toBe(true);
        expect(compileGlob(p)(ex as string)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('kavach policy check warns where the two readings differ', () => {
  const doc = {
    policies: [
      { name: 'refunds', effect: 'permit', conditions: [{ action: 'refund.*' }, { identity_id: ['agent-*', 'ops'] }] },
      { name: 'no_deletes', effect: 'refuse', conditions: [{ any_of: [{ action: 'delete.*' }, { not: { action: 'admin.*' } }] }] },
      { name: 'plain', effect: 'permit', conditions: [{ action: ['fs*', 'fs.read'] }] },
    ],
    invariants: [{ name: 'no_payouts', blocked_actions: ['payout.*'] }],
  };

  it('names the policy, the pattern and an action the readings disagree on', () => {
    const warnings = globReadingWarnings(parsePolicyDocument(doc));
    expect(warnings).toHaveLength(5);
    expect(warnings.find((w) => w.includes('"refund.*"'))).toMatch(/policy 'refunds' \(permit\).*does not admit "refunds"/);
    expect(warnings.find((w) => w.includes('"agent-*"'))).toMatch(/policy 'refunds'.*exact id.*"agent-x"/);
    expect(warnings.find((w) => w.includes('"delete.*"'))).toMatch(/policy 'no_deletes' \(refuse\).*also matches "deletes"/);
    expect(warnings.find((w) => w.includes('"admin.*"'))).toMatch(/inside not.*does not admit "admins"/);
    expect(warnings.find((w) => w.includes('"payout.*"'))).toMatch(/invariant 'no_payouts'.*also matches "payouts"/);
    expect(warnings.join('\n')).not.toContain('plain');
  });

  afterEach(() => vi.restoreAllMocks());
  it('prints them under the file it checks, and still exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kavach-globs-'));
    try {
      const file = join(dir, 'p.json');
      await writeFile(file, JSON.stringify(doc));
      const out: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
      expect(await policyCli(['check', file])).toBe(0);
      expect(out.join('')).toMatch(/warning: policy 'no_deletes' \(refuse\): action "delete.\*" also matches "deletes"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
