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
  // Hosts are compared as the URL parser spells them: `127.1`, `0x7f.1` and `2130706433` all
  // parse to `127.0.0.1`, so a pattern spelt any other way would silently never match.
  const wildcard = pattern.startsWith('*.');
  const name = wildcard ? pattern.slice(2) : pattern;
  let parsed: string;
  try {
    parsed = new URL(`http://${name}/`).hostname;
  } catch {
    return `"${pattern}" is not a host name`;
  }
  const canonical = canonicalHost(parsed);
  if (wildcard && (isIpLiteral(canonical) || /^(\d+|0x[0-9a-f]*)$/.test(name.slice(name.lastIndexOf('.') + 1)))) {
    return `"${pattern}": a wildcard covers names, not IP addresses`;
  }
  if (canonical !== name) return `"${pattern}" never equals a parsed URL host; write "${wildcard ? '*.' : ''}${canonical}"`;
  return undefined;
}

/** An IPv4-mapped IPv6 literal (`[::ffff:7f00:1]`) reaches the IPv4 address: judge it as that. */
function canonicalHost(hostname: string): string {
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(hostname);
  if (!mapped) return hostname;
  const hi = parseInt(mapped[1] as string, 16);
  const lo = parseInt(mapped[2] as string, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function isIpLiteral(host: string): boolean {
  return host.startsWith('[') || /^\d+\.\d+\.\d+\.\d+$/.test(host);
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
  // `https://.example.com` would match `*.example.com` with an empty label, `example.com..` is
  // `example.com` to some resolvers and not to others: no one real host.
  if (host === '' || host.startsWith('.') || host.endsWith('.') || host.includes('..')) return undefined;
  return hostAllowed(canonicalHost(host));
}
