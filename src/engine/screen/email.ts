/**
 * Email addresses, found from each `@` outwards instead of by a regex: a regex with a leading
 * `[…]+` local part retries at every position of a long word or base64 run, which is quadratic on
 * exactly the results (encoded blobs) that have no address in them.
 */
import { endsEscape, isAlnum, type Span } from './detector.ts';

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;
/** File extensions that are not top-level domains: `icon@2x.png` is an image, not an address. */
const NOT_TLDS = new Set([
  'png',
  'jpg',
  'jpeg',
  'gif',
  'svg',
  'webp',
  'ico',
  'bmp',
  'css',
  'js',
  'mjs',
  'cjs',
  'ts',
  'tsx',
  'jsx',
  'json',
  'map',
  'lock',
  'txt',
  'yaml',
  'yml',
  'toml',
]);

// !#$%&'*+/=?^_`{|}~- and . are legal in a local part; the quoted and exotic ones are left out on
// purpose so that `"alice"@x` or `a/b@c` in code does not widen a match into the surrounding text.
const isLocalChar = (c: number): boolean => isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
const isDomainChar = (c: number): boolean => isAlnum(c) || c === 45 || c === 46;
const isLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

export function findEmails(text: string, out: Span[]): void {
  let lastEnd = 0;
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > lastEnd && at - start < MAX_LOCAL && isLocalChar(text.charCodeAt(start - 1)) && !endsEscape(text, start - 1)) start--;
    while (start < at && text.charCodeAt(start) === 46) start++; // a local part does not start with "."
    if (start === at || text.charCodeAt(at - 1) === 46) continue;
    let end = at + 1;
    let dots = 0;
    while (end < text.length && end - at <= MAX_DOMAIN && isDomainChar(text.charCodeAt(end))) {
      if (text.charCodeAt(end) === 46) dots++;
      end++;
    }
    // A sentence may end right after the address: trailing dots and hyphens are not the domain's.
    while (end > at + 1 && (text.charCodeAt(end - 1) === 46 || text.charCodeAt(end - 1) === 45)) {
      if (text.charCodeAt(end - 1) === 46) dots--;
      end--;
    }
    if (dots === 0) continue; // no dot, no domain: the common case of `a@b`, decided without slicing
    if (!validDomain(text, at + 1, end)) continue;
    out.push({ start, end });
    lastEnd = end;
    at = end - 1;
  }
}

function validDomain(text: string, from: number, to: number): boolean {
  const domain = text.slice(from, to);
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  for (const label of labels) {
    if (label.length === 0 || label.length > 63 || label.startsWith('-') || label.endsWith('-')) return false;
  }
  const tld = labels[labels.length - 1] as string;
  if (tld.length < 2 || tld.length > 24 || NOT_TLDS.has(tld.toLowerCase())) return false;
  for (let i = 0; i < tld.length; i++) if (!isLetter(tld.charCodeAt(i))) return false;
  return true;
}
