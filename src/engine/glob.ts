/**
 * Globs: `*` matches any run of characters (including none); every other character is literal.
 * `refund.*` matches `refund.full`, not `refunds`. Compiled once to a plain function, no regex.
 */
export type Matcher = (value: string) => boolean;

export function compileGlob(pattern: string): Matcher {
  if (!pattern.includes('*')) return (value) => value === pattern;
  if (pattern === '*') return () => true;
  const parts = pattern.split('*');
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  const middle = parts.slice(1, -1).filter((p) => p.length > 0);
  const minLength = first.length + last.length + middle.reduce((n, p) => n + p.length, 0);
  return (value) => {
    if (value.length < minLength || !value.startsWith(first) || !value.endsWith(last)) return false;
    let at = first.length;
    const end = value.length - last.length;
    for (const part of middle) {
      const found = value.indexOf(part, at);
      if (found < 0 || found + part.length > end) return false;
      at = found + part.length;
    }
    return true;
  };
}

/** Characters that suggest someone wrote a regex where a glob is expected. */
const REGEX_LIKE = /[\^$()[\]{}|+\\]|\*\*/;

/** Why a glob is unusable, or undefined when it is fine. */
export function globProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'empty pattern';
  if (REGEX_LIKE.test(pattern)) {
    return `"${pattern}" looks like a regular expression; globs use only * (any run of characters)`;
  }
  return undefined;
}

export function compileGlobs(patterns: readonly string[]): Matcher {
  const matchers = patterns.map(compileGlob);
  if (matchers.length === 1) return matchers[0] as Matcher;
  return (value) => matchers.some((m) => m(value));
}
