import { posix } from 'node:path';
import type { JsonValue } from '../context.ts';
import { fold, NEEDS_FOLD } from '../policy/condition.ts';
import { compileExcludedSubtrees, compileExcludes } from './exclude.ts';

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

/**
 * Why a value is not a path `compilePathJudge` passes, as a predicate the caller can act on
 * ("is outside the root \"/w\"", "is excluded by \"*\/.env\""), naming only what the policy author
 * wrote (roots, patterns) and never the path itself, nor its folded reading: a refusal reason
 * reaches the audit log even where the arguments are not recorded (the caller knows what it sent).
 * Undefined for a value that passes. Mirrors the judge, check for check.
 */
export function compilePathCause(roots: readonly string[], exclude: readonly string[] | undefined): (x: JsonValue) => string | undefined {
  const judged = compileJudgedPredicate(roots, exclude);
  const foldedRoots = roots.map(fold);
  const judgedFolded = compileJudgedPredicate(foldedRoots, exclude?.map(fold), roots, exclude);
  const foldAlways = [...roots, ...(exclude ?? [])].some((r) => NEEDS_FOLD.test(r));
  return (x) => {
    if (typeof x !== 'string') return 'is not a path (a string)';
    const given = shapeProblem(x) ?? judged(x);
    if (given !== undefined || (!foldAlways && !NEEDS_FOLD.test(x))) return given;
    const folded = fold(x);
    const other = shapeProblem(folded) ?? judgedFolded(folded);
    return other === undefined ? undefined : `reads, where case and Unicode forms fold (macOS, Windows), as a path that ${other}`;
  };
}

/**
 * The same for a path a symlink leads to: `follow_links` judges the real path, which the caller
 * never sent, so the predicate names the roots and patterns only, never where the link goes.
 */
export function compileLinkCause(
  realRoots: readonly string[],
  exclude: readonly string[] | undefined,
  shownRoots: readonly string[],
): (real: string) => string | undefined {
  const judged = compileJudgedPredicate(realRoots, exclude, shownRoots, exclude);
  const judge = compilePathJudge(realRoots, exclude);
  return (real) => {
    if (!isCanonicalPath(real)) return 'leads through a symlink to a path that cannot be judged';
    const problem = judged(real);
    if (problem !== undefined) return `leads through a symlink to a path that ${problem}`;
    return judge(real) === true ? undefined : 'leads through a symlink to a path that reads differently where case and Unicode forms fold';
  };
}

/** Why a canonical path is outside the roots or excluded; `shown*` are what the policy says (before folding or resolving). */
function compileJudgedPredicate(
  roots: readonly string[],
  exclude: readonly string[] | undefined,
  shownRoots: readonly string[] = roots,
  shownExclude: readonly string[] | undefined = exclude,
): (path: string) => string | undefined {
  const patterns = (exclude ?? []).map((pattern, i) => ({
    shown: JSON.stringify((shownExclude ?? exclude ?? [])[i] ?? pattern),
    subtree: compileExcludedSubtrees([pattern]),
    any: compileExcludes([pattern], roots),
  }));
  const outside = `is outside the root${shownRoots.length === 1 ? '' : 's'} ${shownRoots.map((r) => JSON.stringify(r)).join(', ')}`;
  return (path) => {
    if (!pathWithin(path, roots)) return outside;
    for (const p of patterns) {
      if (p.subtree(path)) return `is excluded by ${p.shown}`;
      // An ancestor of what a many-component pattern excludes (exclude.ts): a move of it would move them.
      if (p.any(path)) return `is a directory above what ${p.shown} excludes (moving it would move that too)`;
    }
    return undefined;
  };
}

/** Why a string is not one canonical absolute path (see isCanonicalPath), or undefined when it is one. */
function shapeProblem(path: string): string | undefined {
  if (path.length === 0) return 'is empty';
  if (path.length > 4096) return 'is longer than 4096 characters';
  if (path.includes('\0')) return 'contains a NUL character';
  if (path.includes('\\')) return 'contains a backslash';
  if (ENCODED.test(path)) return 'contains a percent-encoded dot, separator or percent sign';
  const segments = path.split('/');
  if (segments.includes('..')) return 'has a ".." segment';
  if (path.charCodeAt(0) !== 47) return 'is a relative path (paths must be absolute)';
  if (path.length > 1 && path.endsWith('/')) return 'ends in "/"';
  if (segments.includes('.')) return 'has a "." segment';
  if (path.includes('//')) return 'has an empty segment ("//")';
  return isCanonicalPath(path) ? undefined : 'is not in canonical form';
}
