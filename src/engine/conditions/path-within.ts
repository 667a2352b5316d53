import { posix } from 'node:path';
import type { JsonValue } from '../context.ts';
import { fold, NEEDS_FOLD } from '../policy/condition.ts';
import { compileExcludes } from './exclude.ts';

/**
 * `path_within`: the value must be an absolute path inside one of the roots. Anything that could
 * be read two ways is refused rather than normalised: `..` and `.` segments, `//`, a trailing `/`,
 * NUL, backslashes, percent-encoded separators or dots. Symlinks are the tool's to resolve, unless
 * the condition sets `follow_links` (real-path.ts).
 */
export function rootProblem(root: string): string | undefined {
  if (!root.startsWith('/')) return `root "${root}" must be an absolute path`;
  if (unsafePath(root)) return `root "${root}" is not a clean path`;
  return undefined;
}

export function normaliseRoot(root: string): string {
  const clean = posix.normalize(root);
  return clean.length > 1 && clean.endsWith('/') ? clean.slice(0, -1) : clean;
}

const ENCODED = /%(2e|2f|5c|00|25)/i;

function unsafePath(path: string): boolean {
  if (path.includes('\0') || path.includes('\\') || ENCODED.test(path)) return true;
  return path.split('/').some((segment) => segment === '..');
}

// Paths with nothing to normalise (the common case) skip the split and normalise.
const NEEDS_CARE = /[%\\\0]|\/\.|\/\//;

/**
 * Whether `value` is one absolute path in the one spelling the tool resolves to: `/a/./b`,
 * `/a//b`, `/a/b/`, `..`, NUL, backslashes and encoded separators are not. Otherwise a glob on
 * the same field in a refuse policy (a glob ending in "/.env") misses `/w/.env/` or `/w/.env/.`, which the tool
 * opens as `/w/.env`.
 */
export function isCanonicalPath(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096 || value.charCodeAt(0) !== 47) return false;
  if (value.length > 1 && value.charCodeAt(value.length - 1) === 47) return false;
  return !(NEEDS_CARE.test(value) && (unsafePath(value) || posix.normalize(value) !== value));
}

/** A canonical path equal to or under one of the (normalised) roots. */
export function pathWithin(value: unknown, roots: readonly string[]): boolean {
  if (!isCanonicalPath(value)) return false;
  return roots.some((root) => value === root || value.startsWith(root === '/' ? '/' : root + '/'));
}

/**
 * The verdict on one value: inside a root and in no excluded subtree (exclude.ts); undefined
 * for a value that is not one canonical absolute path, or whose folded reading disagrees.
 */
export function compilePathJudge(roots: readonly string[], exclude: readonly string[] | undefined): (x: JsonValue) => boolean | undefined {
  const excluded = exclude ? compileExcludes(exclude, roots) : () => false;
  const judge = (p: string): boolean => pathWithin(p, roots) && !excluded(p);
  // The same path as a case-insensitive file system (macOS, Windows) or a tool that folds
  // compatibility forms (NFKC, Windows "best fit": U+2025, fullwidth U+FF0E dots and U+FF0F
  // slash become `..` and `/`) reads it. A path whose folded reading gets another verdict
  // (`/w/.ENV` past an exclude of `*/.env`, `/ETC/passwd` past a refuse on `/etc`) cannot be judged.
  const foldedRoots = roots.map(fold);
  const foldedExcluded = exclude ? compileExcludes(exclude.map(fold), foldedRoots) : () => false;
  const judgeFolded = (p: string): boolean => pathWithin(p, foldedRoots) && !foldedExcluded(p);
  // Roots or globs with upper case letters make even an all-lower-case path worth a second reading.
  const foldAlways = [...roots, ...(exclude ?? [])].some((r) => NEEDS_FOLD.test(r));
  return (x) => {
    if (!isCanonicalPath(x)) return undefined;
    const verdict = judge(x);
    if (!foldAlways && !NEEDS_FOLD.test(x)) return verdict;
    const folded = fold(x);
    return isCanonicalPath(folded) && judgeFolded(folded) === verdict ? verdict : undefined;
  };
}
