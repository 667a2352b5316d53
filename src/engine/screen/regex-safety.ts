/**
 * Whether a custom screening pattern is safe to run on every tool result.
 *
 * JavaScript regexes backtrack, and a result is chosen by whoever controls the tool, so a pattern
 * must not let the result decide how long the gate spends on it. We cannot bound a regex's running
 * time from inside (no step limit, no interrupt in a synchronous call), and V8's linear engine needs
 * a process flag. So a pattern is judged at load time, by its shape:
 *
 * - no backreferences and no lookarounds (their cost is not a function of the pattern's shape);
 * - no unbounded repetition (`*`, `+`, `{n,}`): with one, each start position can scan to the end
 *   of a run, which is quadratic over a megabyte result (`\S+` on a megabyte without spaces).
 *   Write `{1,256}` instead: the bound is the longest thing the pattern is meant to find;
 * - a worst-case number of steps per start position, computed from the pattern (nested and
 *   adjacent repetitions multiply, alternatives add, a literal the repetition cannot match
 *   separates them), of at most MAX_STEPS_PER_POSITION. This is what rejects `(a|a){1,30}`,
 *   `(\w{1,9}){1,9}` and friends, and bounds any accepted pattern to linear time: ≤ ~10⁹ simple
 *   steps on a 1 MB result in the very worst case, against milliseconds for sane text.
 *
 * The rules are conservative (a pattern a human can see is safe may still be refused); the error
 * says which rule and where, so it can be rewritten.
 */

export const MAX_STEPS_PER_POSITION = 1000;
export const MAX_REPEAT = 500;
export const MAX_PATTERN_LENGTH = 1024;

type Node =
  | { kind: 'char'; source: string; min: number; max: number }
  | { kind: 'class'; source: string; min: number; max: number }
  | { kind: 'anchor' }
  | { kind: 'group'; branches: Node[][]; min: number; max: number };

class Unsafe extends Error {}

/** Why `source` cannot be a custom pattern, or undefined when it can (and compiles with `gu`). */
export function customRegexProblem(source: string): string | undefined {
  if (source.length === 0) return 'empty pattern';
  if (source.length > MAX_PATTERN_LENGTH) return `longer than ${MAX_PATTERN_LENGTH} characters`;
  if (source.length > 2 && source.startsWith('/') && /\/[a-z]*$/.test(source)) {
    return 'write the pattern without /slashes/ or flags';
  }
  try {
    new RegExp(source, 'gu');
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
  if (new RegExp(`^(?:${source})$`, 'u').test('')) return 'matches the empty string';
  try {
    const tree = parse(source);
    const steps = costOfBranches(tree, 1);
    if (steps > MAX_STEPS_PER_POSITION) {
      const about = steps > 1e12 ? 'astronomically many' : `about ${Math.round(steps)}`;
      return `may take ${about} steps at each position of a result (long, nested or adjacent variable repetitions, or overlapping alternatives); the limit is ${MAX_STEPS_PER_POSITION}: tighten the bounds or separate repetitions with a literal`;
    }
  } catch (err) {
    if (err instanceof Unsafe) return err.message;
    throw err;
  }
  return undefined;
}

// --- parsing (the subset of `u`-mode syntax a valid pattern can use) -------------------------

function parse(source: string): Node[][] {
  let i = 0;
  const group = (depth: number): Node[][] => {
    const branches: Node[][] = [[]];
    while (i < source.length) {
      const ch = source[i] as string;
      if (ch === ')') {
        if (depth === 0) throw new Unsafe(`unbalanced ) at offset ${i}`);
        i++;
        return branches;
      }
      if (ch === '|') {
        branches.push([]);
        i++;
        continue;
      }
      const current = branches[branches.length - 1] as Node[];
      let node: Node;
      const at = i;
      if (ch === '(') {
        i++;
        if (source.startsWith('?=', i) || source.startsWith('?!', i) || source.startsWith('?<=', i) || source.startsWith('?<!', i)) {
          throw new Unsafe(`lookaround at offset ${at} is not allowed in a screening pattern`);
        }
        if (source.startsWith('?:', i)) i += 2;
        else if (source.startsWith('?<', i)) i = source.indexOf('>', i) + 1;
        node = { kind: 'group', branches: group(depth + 1), min: 1, max: 1 };
      } else if (ch === '[') {
        i = classEnd(source, i);
        node = { kind: 'class', source: source.slice(at, i), min: 1, max: 1 };
      } else if (ch === '\\') {
        const next = source[i + 1] ?? '';
        if (/[1-9]/.test(next) || next === 'k') throw new Unsafe(`backreference at offset ${at} is not allowed in a screening pattern`);
        i = escapeEnd(source, i);
        const text = source.slice(at, i);
        if (/^\\[bB]$/.test(text)) node = { kind: 'anchor' };
        else node = { kind: /^\\[dDwWsSpP]/.test(text) ? 'class' : 'char', source: text, min: 1, max: 1 };
      } else if (ch === '^' || ch === '$') {
        i++;
        node = { kind: 'anchor' };
      } else {
        const cp = source.codePointAt(i) as number;
        i += cp > 0xffff ? 2 : 1;
        node = { kind: ch === '.' ? 'class' : 'char', source: source.slice(at, i), min: 1, max: 1 };
      }
      const quantifier = readQuantifier(source, i);
      if (quantifier) {
        if (node.kind === 'anchor') throw new Unsafe(`quantified assertion at offset ${at}`);
        if (quantifier.max === Infinity) {
          throw new Unsafe(
            `unbounded repetition "${source.slice(i, quantifier.end)}" at offset ${i}: write a bound, e.g. {1,256} (an unbounded one makes a large result cost quadratic time)`,
          );
        }
        if (quantifier.max > MAX_REPEAT) throw new Unsafe(`repetition bound ${quantifier.max} at offset ${i} is above ${MAX_REPEAT}`);
        node.min = quantifier.min;
        node.max = quantifier.max;
        i = quantifier.end;
      }
      current.push(node);
    }
    if (depth > 0) throw new Unsafe('unbalanced (');
    return branches;
  };
  return group(0);
}

function classEnd(source: string, from: number): number {
  let i = from + 1;
  while (i < source.length && source[i] !== ']') i += source[i] === '\\' ? 2 : 1;
  return i + 1;
}

function escapeEnd(source: string, from: number): number {
  const next = source[from + 1] ?? '';
  if ((next === 'p' || next === 'P') && source[from + 2] === '{') return source.indexOf('}', from) + 1;
  if (next === 'u' && source[from + 2] === '{') return source.indexOf('}', from) + 1;
  if (next === 'u') return from + 6;
  if (next === 'x') return from + 4;
  if (next === 'c') return from + 3;
  return from + 2;
}

function readQuantifier(source: string, at: number): { min: number; max: number; end: number } | undefined {
  const ch = source[at];
  let q: { min: number; max: number; end: number } | undefined;
  if (ch === '*') q = { min: 0, max: Infinity, end: at + 1 };
  else if (ch === '+') q = { min: 1, max: Infinity, end: at + 1 };
  else if (ch === '?') q = { min: 0, max: 1, end: at + 1 };
  else if (ch === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(at));
    if (m) {
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      q = { min, max, end: at + m[0].length };
    }
  }
  if (q && source[q.end] === '?') q.end++; // lazy: same cost in the worst case
  return q;
}

// --- worst-case steps per start position -----------------------------------------------------

/** Steps to try each branch and then whatever follows (`rest` steps). Alternatives add. */
function costOfBranches(branches: Node[][], rest: number): number {
  let total = 0;
  for (const branch of branches) total += costOfSequence(branch, rest);
  return total;
}

/** Right to left: each element's cost includes the cost of everything after it. */
function costOfSequence(items: Node[], rest: number): number {
  let after = rest;
  for (let k = items.length - 1; k >= 0; k--) {
    after = costOfNode(items[k] as Node, items[k + 1], after);
    if (after > 1e15) return Infinity;
  }
  return after;
}

function costOfNode(node: Node, next: Node | undefined, rest: number): number {
  if (node.kind === 'anchor') return 1 + rest;
  if (node.kind === 'char' || node.kind === 'class') {
    const choices = node.max - node.min + 1;
    // Giving back one character at a time, each retry runs the rest, unless the rest starts with
    // a literal this repetition cannot match: then all but one retry fail at once.
    if (choices > 1 && separates(node, next)) return node.max + choices + rest;
    return node.max + choices * rest;
  }
  let after = rest;
  for (let k = 0; k < node.max - node.min; k++) after = costOfBranches(node.branches, after) + after;
  for (let k = 0; k < node.min; k++) after = costOfBranches(node.branches, after);
  return Math.max(after, 1 + rest);
}

function separates(node: { source: string }, next: Node | undefined): boolean {
  if (next?.kind !== 'char' || next.min === 0) return false;
  const literal = literalOf(next.source);
  if (literal === undefined) return false;
  try {
    return !new RegExp(`^(?:${node.source})$`, 'u').test(literal);
  } catch {
    return false;
  }
}

function literalOf(source: string): string | undefined {
  if (!source.startsWith('\\')) return source;
  try {
    const probe = new RegExp(`^${source}$`, 'u');
    for (const candidate of [source.slice(1), source]) if (probe.test(candidate)) return candidate;
  } catch {
    return undefined;
  }
  return undefined;
}
