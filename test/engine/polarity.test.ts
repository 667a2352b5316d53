import { describe, expect, it } from 'vitest';
import { Gate } from '../../src/index.ts';

// A permit-everything policy beside one refuse policy: whatever the refuse policy cannot judge
// must still be refused, never waved through to the permit.
function gateWith(refuseConditions: object[]): Gate {
  return Gate.fromDict(
    {
      policies: [
        { name: 'allow_all', effect: 'permit', conditions: [] },
        { name: 'guard', effect: 'refuse', conditions: refuseConditions },
      ],
    },
    { drift: false },
  );
}
const verdictFor = async (gate: Gate, params: Record<string, unknown>) => {
  const v = await gate.evaluate({ principalId: 'bot', principalKind: 'agent', actionName: 'refunds.issue', params });
  return v.kind === 'refuse' ? v.code : v.kind;
};

describe('a refuse policy fails closed on values it cannot judge', () => {
  it('refuses a number written as a string, or any non-number, where a number belongs', async () => {
    const gate = gateWith([{ param_min: { field: 'amount', min: 1000 } }]);
    expect(await verdictFor(gate, { amount: 5000 })).toBe('POLICY_DENIED');
    expect(await verdictFor(gate, { amount: 10 })).toBe('permit');
    expect(await verdictFor(gate, { amount: '5000' })).toBe('POLICY_DENIED');
    expect(await verdictFor(gate, { amount: { value: 5000 } })).toBe('POLICY_DENIED');
    expect(await verdictFor(gate, { amount: [10, 5000] })).toBe('POLICY_DENIED');
    expect(await verdictFor(gate, { amount: null })).toBe('POLICY_DENIED');
    // A missing value proves nothing: it neither matches nor blocks.
    expect(await verdictFor(gate, {})).toBe('permit');
  });

  it('refuses lists, objects and non-strings where a glob expects one string', async () => {
    const gate = gateWith([{ param_glob: { field: 'path', pattern: '*/.env' } }]);
    expect(await verdictFor(gate, { path: '/w/.env' })).toBe('POLICY_DENIED');
    expect(await verdictFor(gate, { path: '/w/readme' })).toBe('permit');
    expect(await verdictFor(gate, { path: ['/w/readme', '/w/.env'] })).toBe('POLICY_DENIED');
    expect(await verdictFor(gate, { path: ['/w/readme'] })).toBe('permit');
    expect(await verdictFor(gate, { path: 42 })).toBe('POLICY_DENIED');
  });

  it('refuses a non-canonical spelling of a denied path', async () => {
    const gate = gateWith([{ path_within: { field: 'path', roots: ['/etc'] } }]);
    expect(await verdictFor(gate, { path: '/etc/passwd' })).toBe('POLICY_DENIED');
    expect(await verdictFor(gate, { path: '/home/a' })).toBe('permit');
    for (const path of ['/etc/./passwd', '/etc//passwd', '/home/../etc/passwd', '/etc%2fpasswd', 'etc/passwd', '/etc/passwd/']) {
      expect(await verdictFor(gate, { path }), path).toBe('POLICY_DENIED');
    }
  });

  it('refuses a URL it cannot read cleanly when the refuse policy names its host', async () => {
    const gate = gateWith([{ url_host_in: { field: 'url', hosts: ['evil.example.net'] } }]);
    expect(await verdictFor(gate, { url: 'https://evil.example.net/x' })).toBe('POLICY_DENIED');
    expect(await verdictFor(gate, { url: 'https://good.example.com/x' })).toBe('permit');
    for (const url of [
      'https://good.example.com@evil.example.net/',
      'https://good.example.com\\@evil.example.net/',
      'not a url',
      'ftp://evil.example.net/',
    ]) {
      expect(await verdictFor(gate, { url }), url).toBe('POLICY_DENIED');
    }
  });

  it('keeps permit policies strict: an unjudgeable value fails them', async () => {
    const gate = Gate.fromDict(
      { policies: [{ name: 'small', effect: 'permit', conditions: [{ param_max: { field: 'amount', max: 100 } }] }] },
      { drift: false },
    );
    expect(await verdictFor(gate, { amount: 50 })).toBe('permit');
    expect(await verdictFor(gate, { amount: '50' })).toBe('NO_POLICY_MATCH');
    expect(await verdictFor(gate, { amount: [50] })).toBe('NO_POLICY_MATCH');
  });

  it('flips under not: a permit "unless amount >= 1000" refuses a string amount', async () => {
    const gate = Gate.fromDict(
      { policies: [{ name: 'unless_big', effect: 'permit', conditions: [{ not: { param_min: { field: 'amount', min: 1000 } } }] }] },
      { drift: false },
    );
    expect(await verdictFor(gate, { amount: 10 })).toBe('permit');
    expect(await verdictFor(gate, { amount: 5000 })).toBe('NO_POLICY_MATCH');
    expect(await verdictFor(gate, { amount: '5000' })).toBe('NO_POLICY_MATCH');
  });
});
