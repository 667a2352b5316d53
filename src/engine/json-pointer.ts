import type { JsonValue } from './context.ts';

/**
 * A condition's `field`: a top-level key (`amount`) or a JSON Pointer (`/order/amount`, RFC 6901).
 * Compiled once into a reader that returns undefined when any step is missing.
 */
export type FieldReader = (params: Record<string, JsonValue>) => JsonValue | undefined;

export function fieldProblem(field: string): string | undefined {
  if (field.length === 0) return 'empty field';
  if (field.startsWith('/') && /~(?![01])/.test(field)) return `"${field}" has a bad JSON Pointer escape (only ~0 and ~1)`;
  return undefined;
}

export function compileField(field: string): FieldReader {
  if (!field.startsWith('/')) return (params) => (Object.hasOwn(params, field) ? params[field] : undefined);
  const steps = field
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  return (params) => {
    let at: JsonValue | undefined = params;
    for (const step of steps) {
      if (at === null || typeof at !== 'object') return undefined;
      if (Array.isArray(at)) {
        if (!/^(0|[1-9]\d*)$/.test(step)) return undefined;
        at = at[Number(step)];
      } else {
        at = Object.hasOwn(at, step) ? at[step] : undefined;
      }
      if (at === undefined) return undefined;
    }
    return at;
  };
}
