/**
 * `[[screen]]` blocks of a policy file (JSON `"screen": [...]`), validated as strictly as the
 * policies beside them: every mistake is a PolicyError naming the path of the bad field.
 */
import { z } from 'zod';
import { PolicyError } from '../errors.ts';
import { globProblem } from '../glob.ts';
import { parseAt } from '../policy/schema.ts';
import { DETECTOR_NAMES } from './detectors.ts';
import { customRegexProblem } from './regex-safety.ts';

export const SCREEN_MODES = ['redact', 'block', 'report'] as const;
export type ScreenMode = (typeof SCREEN_MODES)[number];

export interface PatternSpec {
  name: string;
  regex: string;
}

export interface ScreenSpec {
  name: string;
  description?: string;
  /** Globs over action names (`*` any run, else literal); absent: every action. */
  actions?: string[];
  /** Built-in detector names. */
  detectors: string[];
  patterns: PatternSpec[];
  mode: ScreenMode;
}

const MAX_SCREENS = 1000;
/** Pattern names appear in `[REDACTED:<name>]` and in audit records: plain words only. */
const PATTERN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

const screenSchema = z.strictObject({
  name: z.string().min(1, 'must not be empty').max(256),
  description: z.string().max(4096).optional(),
  actions: z
    .array(
      z
        .string()
        .max(1024)
        .superRefine((g, ctx) => {
          const p = globProblem(g);
          if (p) ctx.addIssue({ code: 'custom', message: p });
        }),
    )
    .min(1, 'must not be empty (leave actions out to screen every action)')
    .optional(),
  detectors: z.array(z.string()).max(64),
  patterns: z
    .array(z.strictObject({ name: z.string(), regex: z.string() }))
    .max(64)
    .optional(),
  mode: z.enum(SCREEN_MODES),
});

/** Validates the raw `screen` list; `listKey` is how the file spelt it (`screen` or `screens`). */
export function parseScreens(raw: readonly unknown[], listKey: string): ScreenSpec[] {
  if (raw.length > MAX_SCREENS) throw new PolicyError(listKey, `more than ${MAX_SCREENS} screens`);
  const screens = raw.map((item, i) => parseScreen(item, `${listKey}[${i}]`));
  const seen = new Map<string, number>();
  screens.forEach((s, i) => {
    const first = seen.get(s.name);
    if (first !== undefined)
      throw new PolicyError(`${listKey}[${i}].name`, `duplicate screen name "${s.name}" (also ${listKey}[${first}])`);
    seen.set(s.name, i);
  });
  return screens;
}

function parseScreen(raw: unknown, path: string): ScreenSpec {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyError(path, 'a screen must be a table');
  const parsed = parseAt(screenSchema, raw, path);
  const detectors: string[] = [];
  parsed.detectors.forEach((name, i) => {
    const at = `${path}.detectors[${i}]`;
    if (!DETECTOR_NAMES.includes(name)) throw new PolicyError(at, `unknown detector "${name}"${nearestDetectors(name)}`);
    if (detectors.includes(name)) throw new PolicyError(at, `"${name}" is listed twice`);
    detectors.push(name);
  });
  const patterns: PatternSpec[] = [];
  (parsed.patterns ?? []).forEach(({ name, regex }, i) => {
    const at = `${path}.patterns[${i}]`;
    if (!PATTERN_NAME.test(name))
      throw new PolicyError(`${at}.name`, 'must be 1-64 letters, digits, "_", "." or "-", starting with a letter, digit or "_"');
    if (DETECTOR_NAMES.includes(name))
      throw new PolicyError(`${at}.name`, `"${name}" is a built-in detector: list it in detectors, or name the pattern otherwise`);
    if (patterns.some((p) => p.name === name)) throw new PolicyError(`${at}.name`, `duplicate pattern name "${name}"`);
    const problem = customRegexProblem(regex);
    if (problem) throw new PolicyError(`${at}.regex`, problem);
    patterns.push({ name, regex });
  });
  if (detectors.length === 0 && patterns.length === 0)
    throw new PolicyError(`${path}.detectors`, 'a screen needs at least one detector or pattern');
  const spec: ScreenSpec = { name: parsed.name, detectors, patterns, mode: parsed.mode };
  if (parsed.description !== undefined) spec.description = parsed.description;
  if (parsed.actions !== undefined) spec.actions = parsed.actions;
  return spec;
}

/**
 * `; did you mean "aws_access_key"?` — by shared words as well as spelling, since a short name
 * (`aws_key`, `github`) is far in edits from the long one it means.
 */
function nearestDetectors(name: string): string {
  const words = name
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 1);
  const byWords = DETECTOR_NAMES.filter(
    (d) => words.length > 0 && words.every((w) => d.split('_').some((part) => part.startsWith(w) || w.startsWith(part))),
  );
  const bySpelling = DETECTOR_NAMES.filter((d) => closeSpelling(name.toLowerCase(), d));
  const found = [...new Set([...bySpelling, ...byWords])].slice(0, 3);
  if (found.length === 0) return `; known detectors: ${DETECTOR_NAMES.join(', ')}`;
  return `; did you mean ${found.map((d) => `"${d}"`).join(' or ')}?`;
}

function closeSpelling(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 2) return false;
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return (prev[b.length] as number) <= 2;
}
