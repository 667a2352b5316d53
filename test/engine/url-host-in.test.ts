// url_host_in against hosts a URL parser spells differently from the way they were written:
// IPv4-mapped IPv6 literals, numeric IPv4 forms, trailing empty labels.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileHostPatterns, hostPatternProblem, urlHostAllowed } from '../../src/engine/conditions/url-host.ts';
import { allowing, ctx, guarded, loadError, outcome } from './helpers.ts';

const call = (params: Record<string, unknown>) => ctx({ principalId: 'bot', actionName: 'web.fetch', params });

describe('url_host_in reads an IPv4-mapped IPv6 literal as the IPv4 address it reaches', () => {
  it('a refuse on the metadata address also refuses its [::ffff:…] spelling', async () => {
    const gate = guarded([{ url_host_in: { field: 'url', hosts: ['169.254.169.254', '127.0.0.1'] } }]);
    for (const url of [
      'http://169.254.169.254/latest/meta-data',
      'http://[::ffff:169.254.169.254]/latest',
      'http://[::ffff:a9fe:a9fe]/',
      'http://[0:0:0:0:0:ffff:7f00:1]:8080/',
    ]) {
      expect(await outcome(gate, call({ url })), url).toBe('POLICY_DENIED');
    }
    expect(await outcome(gate, call({ url: 'http://[::1]/' }))).toBe('permit');
  });

  it('property: a v4-mapped literal is judged exactly as the dotted address, in an allow-list too', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.boolean(), (ip, other, hex) => {
        const allowed = compileHostPatterns([ip === other ? '10.9.8.7' : other, ip]);
        const parts = ip.split('.').map(Number) as [number, number, number, number];
        const h = (a: number, b: number) => ((a << 8) | b).toString(16);
        const mapped = hex ? `[::ffff:${h(parts[0], parts[1])}:${h(parts[2], parts[3])}]` : `[::ffff:${ip}]`;
        expect(urlHostAllowed(`http://${mapped}/`, allowed, ['http'])).toBe(true);
        expect(urlHostAllowed(`http://${mapped}/`, compileHostPatterns([other]), ['http'])).toBe(ip === other);
      }),
    );
  });
});

describe('url_host_in host patterns are spelt the way a parsed URL spells its host', () => {
  it.each([
    ['127.000.000.001', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['1.2.3', '1.2.0.3'],
    ['[0:0:0:0:0:0:0:1]', '[::1]'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
  ])('refuses %j, which no URL host ever equals, and names %j', (pattern, canonical) => {
    const err = loadError({
      policies: [{ name: 'p', effect: 'refuse', conditions: [{ url_host_in: { field: 'u', hosts: ['example.com', pattern] } }] }],
    });
    expect(err.path).toBe('policies[0].conditions[0].url_host_in.hosts[1]');
    expect(err.message).toContain(`"${canonical}"`);
  });

  it('refuses a wildcard over IP addresses (*.0.0.1 would match 127.0.0.1)', () => {
    for (const pattern of ['*.0.0.1', '*.123', '*.0x7f']) {
      expect(
        loadError({ policies: [{ name: 'p', effect: 'permit', conditions: [{ url_host_in: { field: 'u', hosts: [pattern] } }] }] }).path,
      ).toBe('policies[0].conditions[0].url_host_in.hosts[0]');
    }
  });

  it('property: every exact pattern the loader accepts is matched by a URL naming that host', () => {
    const label = fc.oneof(fc.stringMatching(/^[a-z0-9-]{1,8}$/), fc.stringMatching(/^(0|0x[0-9a-f]{1,3}|[0-9]{1,4}|0[0-7]{1,3})$/));
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 5 }), (labels) => {
        const pattern = labels.join('.');
        fc.pre(hostPatternProblem(pattern) === undefined);
        expect(urlHostAllowed(`http://${pattern}/`, compileHostPatterns([pattern]), ['http'])).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('still takes ordinary names, punycode, IPv4 and bracketed IPv6 as they are', () => {
    for (const p of [
      'example.com',
      '*.example.com',
      'xn--mnchen-3ya.de',
      'a--b.example',
      '10.0.0.1',
      '[::1]',
      '[2001:db8::1]',
      'localhost',
    ]) {
      expect(hostPatternProblem(p), p).toBeUndefined();
    }
  });
});

describe('url_host_in: a host with an empty last label cannot be judged', () => {
  it('https://example.com../ is refused by a refuse on example.com and fails an allow-list', async () => {
    expect(
      await outcome(guarded([{ url_host_in: { field: 'url', hosts: ['example.com'] } }]), call({ url: 'https://example.com../' })),
    ).toBe('POLICY_DENIED');
    expect(
      await outcome(allowing([{ url_host_in: { field: 'url', hosts: ['example.com'] } }]), call({ url: 'https://example.com../' })),
    ).toBe('NO_POLICY_MATCH');
  });
});
