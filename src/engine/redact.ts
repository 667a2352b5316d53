import type { JsonValue } from './context.ts';

/** A JSON Pointer (RFC 6901) split into unescaped steps. Throws on a malformed pointer. */
export function pointerSteps(pointer: string): string[] {
  if (!pointer.startsWith('/')) throw new TypeError(`redact path "${pointer}" must be a JSON Pointer starting with "/"`);
  if (/~(?![01])/.test(pointer)) throw new TypeError(`redact path "${pointer}" has a bad escape (only ~0 and ~1)`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The pointers as a tree of steps: `ends` lists the pointers that end at this node. */
interface Steps {
  ends: number[];
  next: Map<string, Steps>;
}

function tree(pointers: readonly (readonly string[])[]): Steps {
  const root: Steps = { ends: [], next: new Map() };
  pointers.forEach((steps, i) => {
    let node = root;
    for (const step of steps) {
      let child = node.next.get(step);
      if (!child) node.next.set(step, (child = { ends: [], next: new Map() }));
      node = child;
    }
    node.ends.push(i);
  });
  return root;
}

/**
 * A copy of `value` without the fields the pointers name (only the spine to each removed field is
 * copied; the rest is shared, so callers must not mutate the result). Also says which were present.
 * Every pointer is resolved against the original value, in one pass: removing `/a/0` must not
 * shift what `/a/1` names (applied one after another, `/a/0` + `/a/1` removed a[0] and a[2] and
 * kept a[1]).
 */
export function redact(value: JsonValue, pointers: readonly (readonly string[])[]): { value: JsonValue; removed: number[] } {
  const removed: number[] = [];
  const out = prune(value, tree(pointers), removed);
  return { value: out ?? value, removed: removed.sort((a, b) => a - b) };
}

/** The node without the named children, or undefined when nothing under it is named. */
function prune(node: JsonValue, steps: Steps, removed: number[]): JsonValue | undefined {
  if (node === null || typeof node !== 'object' || steps.next.size === 0) return undefined;
  if (Array.isArray(node)) {
    let copy: JsonValue[] | undefined;
    const drop = new Set<number>();
    for (const [step, child] of steps.next) {
      if (!/^(0|[1-9]\d*)$/.test(step)) continue;
      const at = Number(step);
      if (at >= node.length) continue;
      if (child.ends.length > 0) {
        drop.add(at);
        removed.push(...child.ends);
        continue;
      }
      const inner = prune(node[at] as JsonValue, child, removed);
      if (inner === undefined) continue;
      copy ??= node.slice();
      copy[at] = inner;
    }
    if (drop.size === 0) return copy;
    return (copy ?? node).filter((_, i) => !drop.has(i));
  }
  let changed = false;
  const entries: [string, JsonValue][] = [];
  for (const [key, v] of Object.entries(node)) {
    const child = steps.next.get(key);
    if (child === undefined) {
      entries.push([key, v]);
      continue;
    }
    if (child.ends.length > 0) {
      removed.push(...child.ends);
      changed = true;
      continue;
    }
    const inner = prune(v, child, removed);
    if (inner !== undefined) changed = true;
    entries.push([key, inner ?? v]);
  }
  // fromEntries defines properties, so a "__proto__" key stays data, never a prototype.
  return changed ? (Object.fromEntries(entries) as { [key: string]: JsonValue }) : undefined;
}
