import { compileGlob, type Matcher } from '../glob.ts';

/**
 * `path_within` excludes name subtrees (DESIGN §5). A pattern with its trailing `/*` stripped
 * names a directory (or file); a path is excluded when it, or any of its ancestors, matches it. So
 * `*\/.git/*` and `*\/.git` both exclude `.git` itself and everything below it: a move of `.git`
 * (to `gitdir`, to edit `gitdir/config` and move it back) names an excluded source.
 *
 * Renaming an ancestor must not be a way around an exclude either. A pattern that only looks at
 * one path component (`*\/.git`, `*.pem`, `*\/.env.*`) is safe: a renamed parent keeps the excluded
 * component. A pattern that reads more than that (`/w/a/secret`, `*\/repo/.git`) depends on the
 * names of directories above the subtree it excludes; those directories are excluded as well,
 * since path_within cannot tell a move from a read (see `dependsOn`). Roots are exempt when they
 * hold every other root: nothing inside the roots can rename them.
 */
export function compileExcludes(patterns: readonly string[], roots: readonly string[]): Matcher {
  const inSubtree = compileExcludedSubtrees(patterns);
  const riskyParts = patterns
    .map(subtreeOf)
    .filter((s) => !readsOneComponent(s))
    .map((s) => s.split('*'));
  const immovable = new Set(roots.filter((r) => roots.every((other) => other === r || other.startsWith(r === '/' ? '/' : `${r}/`))));
  return (path) => {
    if (inSubtree(path)) return true;
    if (riskyParts.length === 0 || immovable.has(path)) return false;
    return riskyParts.some((parts) => dependsOn(parts, path));
  };
}

/** The subtree part alone: a path excluded because it or one of its ancestors matches a pattern. */
export function compileExcludedSubtrees(patterns: readonly string[]): Matcher {
  const matchers = patterns.map((p) => compileGlob(subtreeOf(p)));
  return (path) => matchers.some((m) => selfOrAncestorMatches(path, m));
}

/** `X/*` names the subtree `X`; `/*` (everything under the root) stays as it is. */
export function subtreeOf(pattern: string): string {
  return pattern.length > 2 && pattern.endsWith('/*') ? pattern.slice(0, -2) : pattern;
}

/**
 * `*` + a `/`-free literal (optionally after one leading `/`, optionally ending in `*`): whether a
 * path matches depends on its last component alone, so renaming a parent changes nothing.
 */
const ONE_COMPONENT = /^\*\/?[^*/]*\*?$/;
export const readsOneComponent = (subtree: string): boolean => ONE_COMPONENT.test(subtree);

function selfOrAncestorMatches(path: string, match: Matcher): boolean {
  if (match(path)) return true;
  for (let i = path.lastIndexOf('/'); i >= 0; i = i === 0 ? -1 : path.lastIndexOf('/', i - 1)) {
    if (match(i === 0 ? '/' : path.slice(0, i))) return true;
  }
  return false;
}

/**
 * Whether a path below `dir` could match the glob (split at its stars) in a way that reads a
 * character of `dir` with a literal part: then moving `dir` elsewhere could take that path out
 * of the exclude. A small NFA run over `dir + "/"`; a state whose literal consumed a character
 * of `dir` and that can still complete means yes. Conservative: a path whose every match also
 * has another reading is reported too.
 */
export function dependsOn(parts: readonly string[], dir: string): boolean {
  const text = `${dir}/`;
  const last = parts.length - 1;
  // State: part index, offset into it (offset === -1: inside the star after part `i`), and whether a literal read `dir`.
  type State = { i: number; o: number; read: boolean };
  const key = (s: State) => `${s.i},${s.o},${s.read ? 1 : 0}`;
  const close = (states: State[]): State[] => {
    const seen = new Map<string, State>();
    const stack = [...states];
    while (stack.length > 0) {
      const s = stack.pop() as State;
      if (seen.has(key(s))) continue;
      seen.set(key(s), s);
      const part = parts[s.i] as string;
      if (s.o === part.length && s.i < last) stack.push({ i: s.i, o: -1, read: s.read });
      if (s.o === -1) stack.push({ i: s.i + 1, o: 0, read: s.read });
    }
    return [...seen.values()];
  };
  let states = close([{ i: 0, o: 0, read: false }]);
  for (let k = 0; k < text.length && states.length > 0; k++) {
    const ch = text[k];
    const inDir = k < dir.length;
    const next: State[] = [];
    for (const s of states) {
      if (s.o === -1) next.push(s);
      else if ((parts[s.i] as string)[s.o] === ch) next.push({ i: s.i, o: s.o + 1, read: s.read || inDir });
    }
    states = close(next);
  }
  // A path below `dir` adds at least one character, so a finished last part cannot complete.
  return states.some((s) => s.read && !(s.i === last && s.o === (parts[last] as string).length));
}
