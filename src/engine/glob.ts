/**
 * Globs: `*` matches any run of characters (including none); every other character is literal.
 * `refund.*` matches `refund.full`, not `refunds`. Compiled once to a plain function, no regex.
 *
 * Kavach reads a trailing `.*` as a bare prefix (`delete.*` matches `delete_user`), and a policy
 * file written for Kavach must never get weaker here. So where a pattern decides what is refused
 * it takes the broader of the two readings, and where it decides what is permitted the narrower
 * one (see GlobReading); `kavach policy check` names every pattern whose readings differ.
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

/**
 * Which reading of a pattern a condition takes. `narrow` (what permits): ours, `refund.*` is
 * `refund.` and more. `broad` (what refuses, what scopes an invariant): ours or Kavach's, so
 * `refund.*` is the bare prefix `refund`. Only a trailing `.*` reads differently (a trailing `*`
 * is a prefix either way).
 */
export type GlobReading = 'narrow' | 'broad';

/** The pattern whose plain glob reading is the broader of ours and Kavach's. */
export function broadPattern(pattern: string): string {
  return pattern.endsWith('.*') ? `${pattern.slice(0, -2)}*` : pattern;
}

export function compileGlobsAs(patterns: readonly string[], reading: GlobReading): Matcher {
  return compileGlobs(reading === 'broad' ? patterns.map(broadPattern) : patterns);
}

/**
 * A value the broad reading of `pattern` matches and the narrow one does not (`refund.*` →
 * `refunds`), or undefined when both readings agree.
 */
export function readingsDisagreeOn(pattern: string): string | undefined {
  if (!pattern.endsWith('.*')) return undefined;
  const narrow = compileGlob(pattern);
  const broad = compileGlob(broadPattern(pattern));
  const stem = pattern.slice(0, -2).replaceAll('*', '');
  return [`${stem}s`, `${stem}_x`, stem].find((v) => broad(v) && !narrow(v));
}
