import type { JsonValue } from '../engine/context.ts';

/** A JSON Pointer (RFC 6901) split into unescaped steps. Throws on a malformed pointer. */
export function pointerSteps(pointer: string): string[] {
  if (!pointer.startsWith('/')) throw new TypeError(`redact path "${pointer}" must be a JSON Pointer starting with "/"`);
  if (/~(?![01])/.test(pointer)) throw new TypeError(`redact path "${pointer}" has a bad escape (only ~0 and ~1)`);
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * A copy of `value` without the fields the pointers name (only the spine to each removed field is
 * copied; the rest is shared, so callers must not mutate the result). Also says which were present.
 */
export function redact(value: JsonValue, pointers: readonly (readonly string[])[]): { value: JsonValue; removed: number[] } {
  let out = value;
  const removed: number[] = [];
  pointers.forEach((steps, i) => {
    const next = removeAt(out, steps, 0);
    if (next !== undefined) {
      out = next;
      removed.push(i);
    }
  });
  return { value: out, removed };
}

/** The value with the path removed, or undefined when the path is absent. */
function removeAt(node: JsonValue, steps: readonly string[], depth: number): JsonValue | undefined {
  if (node === null || typeof node !== 'object' || depth >= steps.length) return undefined;
  const step = steps[depth] as string;
  const last = depth === steps.length - 1;
  if (Array.isArray(node)) {
    if (!/^(0|[1-9]\d*)$/.test(step)) return undefined;
    const at = Number(step);
    if (at >= node.length) return undefined;
    if (last) return node.filter((_, i) => i !== at);
    const child = removeAt(node[at] as JsonValue, steps, depth + 1);
    if (child === undefined) return undefined;
    const copy = node.slice();
    copy[at] = child;
    return copy;
  }
  if (!Object.hasOwn(node, step)) return undefined;
  if (last) {
    // fromEntries defines properties, so a "__proto__" key stays data, never a prototype.
    return Object.fromEntries(Object.entries(node).filter(([key]) => key !== step)) as { [key: string]: JsonValue };
  }
  const child = removeAt(node[step] as JsonValue, steps, depth + 1);
  if (child === undefined) return undefined;
  return { ...node, [step]: child };
}
