import { compileGlob, type Matcher } from '../glob.ts';

/**
 * `url_host_in`: the value must parse as a URL (WHATWG, as fetch would read it) with an allowed
 * scheme, no userinfo (`https://good.com@evil.com`), and a host on the list. `*.example.com`
 * matches subdomains only; list `example.com` too for the apex.
 */
export function hostPatternProblem(pattern: string): string | undefined {
  if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$|^\[[0-9a-f:.]+\]$|^\d+\.\d+\.\d+\.\d+$/.test(pattern)) {
    return `"${pattern}" is not a host name (lower case, optional leading "*.")`;
  }
  return undefined;
}

export function compileHostPatterns(patterns: readonly string[]): Matcher {
  const exact = new Set(patterns.filter((p) => !p.startsWith('*.')));
  const suffixes = patterns.filter((p) => p.startsWith('*.')).map((p) => compileGlob(p));
  return (host) => exact.has(host) || suffixes.some((m) => m(host));
}

const AMBIGUOUS = /[\\\u0000-\u0020\u007f]/;

/**
 * Whether the URL's host is allowed: undefined when the value is not one clean URL in an allowed
 * scheme (unparseable, userinfo, two parsers disagree, no real host), so that a refuse policy can
 * treat it as a match and a permit policy as a failure.
 */
export function urlHostAllowed(value: unknown, hostAllowed: Matcher, schemes: readonly string[]): boolean | undefined {
  if (typeof value !== 'string' || value.length > 8192) return undefined;
  // WHATWG reads `\` as `/` and drops tabs/newlines; curl, requests and friends do not. A URL
  // two parsers read differently (`https://good.com\@evil.com`) is not guessed at.
  if (AMBIGUOUS.test(value)) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (!schemes.includes(url.protocol.slice(0, -1))) return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  let host = url.hostname.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  // `https://.example.com` would match `*.example.com` with an empty label: no real host.
  if (host === '' || host.startsWith('.') || host.includes('..')) return undefined;
  return hostAllowed(host);
}
