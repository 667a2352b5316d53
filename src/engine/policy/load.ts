import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { PolicyError } from '../errors.ts';
import { parseApprovalTable } from './approval-table.ts';
import { CONDITION_KEYS, CONDITIONS, STATEFUL_CONDITIONS, isLeafCondition, type ConditionSpec } from './conditions.ts';
import { parseScreens } from '../screen/spec.ts';
import {
  INVARIANT_SCHEMAS,
  MAX_CONDITION_DEPTH,
  documentSchema,
  joinPath,
  parseAt,
  policyHeaderSchema,
  suggest,
  type FileInvariantSpec,
  type PolicySetSpec,
  type PolicySpec,
} from './schema.ts';

export type PolicyFormat = 'toml' | 'json';

/** Text in either format to a validated policy set. An empty document is an empty set (kill switch). */
export function parsePolicyText(text: string, format: PolicyFormat): PolicySetSpec {
  if (typeof text !== 'string') throw new PolicyError('', 'policy source must be a string');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark from a Windows editor
  let doc: unknown;
  try {
    doc = format === 'json' ? (text.trim() === '' ? {} : JSON.parse(text)) : parseToml(text);
  } catch (err) {
    throw new PolicyError('', `not valid ${format.toUpperCase()}: ${(err as Error).message}`);
  }
  if (format === 'json') refuseDuplicateKeys(text);
  return parsePolicyDocument(doc);
}

/**
 * JSON.parse keeps the last of two equal keys; TOML refuses them. A second `"policies": []` at the
 * end of a file must not silently drop every policy above it, so valid JSON is scanned for them.
 */
function refuseDuplicateKeys(text: string): void {
  const frames: { keys: Set<string> | null; step: string | number }[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = frames[frames.length - 1];
      if (top?.keys && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) {
          throw new PolicyError(joinPath('', [...frames.slice(0, -1).map((f) => f.step), key]), `duplicate key "${key}"`);
        }
        top.keys.add(key);
        top.step = key;
        expectKey = false;
      }
      i = j;
    } else if (ch === '{') {
      frames.push({ keys: new Set(), step: '' });
      expectKey = true;
    } else if (ch === '[') {
      frames.push({ keys: null, step: 0 });
    } else if (ch === '}' || ch === ']') {
      frames.pop();
    } else if (ch === ',') {
      const top = frames[frames.length - 1];
      if (top?.keys) expectKey = true;
      else if (top) top.step = (top.step as number) + 1;
    }
  }
}

/** Guesses the format of a string source: JSON when it starts with `{`, else TOML. */
/** A policy file's text and its format, by extension (`.toml` or `.json`; anything else is refused). */
export async function readPolicyFile(path: string): Promise<{ text: string; format: PolicyFormat }> {
  const ext = extname(path).toLowerCase();
  if (ext !== '.json' && ext !== '.toml') throw new PolicyError('', `policy file must end in .toml or .json: ${path}`);
  return { text: await readFile(path, 'utf8'), format: ext === '.json' ? 'json' : 'toml' };
}

export function sniffFormat(text: string): PolicyFormat {
  return text.trimStart().startsWith('{') ? 'json' : 'toml';
}

/** The one loader core behind the three formats: a plain document to a validated policy set. */
export function parsePolicyDocument(doc: unknown): PolicySetSpec {
  // Optional keys left out (`per`, `combining`, `priority`, `exclude`) are read as absent; with
  // enumerable junk on Object.prototype they would be inherited instead. Refuse rather than guess.
  for (const key in Object.prototype) {
    throw new PolicyError(
      '',
      `Object.prototype has an enumerable "${key}" (prototype pollution): refusing to load policies that would inherit it`,
    );
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new PolicyError('', 'a policy document must be an object (TOML table or JSON object)');
  }
  const top = parseAt(documentSchema, doc, '');
  if (top.policy && top.policies) throw new PolicyError('policies', 'use either "policy" or "policies", not both');
  if (top.invariant && top.invariants) throw new PolicyError('invariants', 'use either "invariant" or "invariants", not both');
  const listKey = top.policy ? 'policy' : 'policies';
  const rawPolicies = top.policy ?? top.policies ?? [];
  const policies = rawPolicies.map((raw, i) => parsePolicy(raw, `${listKey}[${i}]`));
  const seen = new Map<string, number>();
  policies.forEach((p, i) => {
    const first = seen.get(p.name);
    if (first !== undefined)
      throw new PolicyError(`${listKey}[${i}].name`, `duplicate policy name "${p.name}" (also ${listKey}[${first}])`);
    seen.set(p.name, i);
  });
  const invariantKey = top.invariant ? 'invariant' : 'invariants';
  const invariants = (top.invariant ?? top.invariants ?? []).map((raw, i) => parseInvariant(raw, `${invariantKey}[${i}]`));
  const names = new Map<string, number>();
  invariants.forEach((inv, i) => {
    const first = names.get(inv.name);
    if (first !== undefined)
      throw new PolicyError(`${invariantKey}[${i}].name`, `duplicate invariant name "${inv.name}" (also ${invariantKey}[${first}])`);
    names.set(inv.name, i);
  });
  if (top.screen && top.screens) throw new PolicyError('screens', 'use either "screen" or "screens", not both');
  const screens = parseScreens(top.screen ?? top.screens ?? [], top.screen ? 'screen' : 'screens');
  return { combining: top.combining ?? 'deny-overrides', policies, invariants, screens };
}

function parsePolicy(raw: unknown, path: string): PolicySpec {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyError(path, 'a policy must be a table');
  if (Object.hasOwn(raw, 'combining')) {
    // TOML puts a key written after a [[policy]] table into that table.
    throw new PolicyError(`${path}.combining`, 'unknown key (in TOML, write combining above the first [[policy]] table)');
  }
  const { conditions: rawConditions, priority, approval, ...header } = parseAt(policyHeaderSchema, raw, path);
  const conditions = rawConditions.map((c, i) => parseCondition(c, `${path}.conditions[${i}]`, 0));
  if (header.effect === 'refuse') {
    conditions.forEach((c, i) => {
      const key = Object.keys(c)[0] as string;
      if (STATEFUL_CONDITIONS.has(key)) {
        throw new PolicyError(`${path}.conditions[${i}].${key}`, `${key} only belongs in a permit policy (it limits what is permitted)`);
      }
    });
  }
  // Every other header field (description, and whatever is added to the schema) passes through as parsed.
  const spec: PolicySpec = { ...header, conditions, priority: priority ?? 100 };
  if (header.effect === 'approve') spec.approval = parseApprovalTable(approval, `${path}.approval`);
  else if (approval !== undefined)
    throw new PolicyError(`${path}.approval`, `only an approve policy takes an approval table (this one is ${header.effect})`);
  return spec;
}

function singleKey(raw: unknown, path: string, what: string, known: readonly string[]): string {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyError(path, `${what} must be a table with one key`);
  const keys = Object.keys(raw);
  if (keys.length !== 1) {
    throw new PolicyError(
      path,
      `${what} must have exactly one key, found ${keys.length === 0 ? 'none' : keys.map((k) => `"${k}"`).join(', ')}`,
    );
  }
  const key = keys[0] as string;
  if (!known.includes(key)) throw new PolicyError(`${path}.${key}`, `unknown ${what}${suggest(key, known)}`);
  return key;
}

function parseCondition(raw: unknown, path: string, depth: number): ConditionSpec {
  if (depth > MAX_CONDITION_DEPTH) throw new PolicyError(path, `conditions nest deeper than ${MAX_CONDITION_DEPTH} levels`);
  const key = singleKey(raw, path, 'condition', CONDITION_KEYS);
  const value = (raw as Record<string, unknown>)[key];
  const at = `${path}.${key}`;
  if (key === 'any_of') {
    if (!Array.isArray(value) || value.length === 0) throw new PolicyError(at, 'must be a non-empty array of conditions');
    return { any_of: value.map((c, i) => nested(parseCondition(c, `${at}[${i}]`, depth + 1), `${at}[${i}]`)) };
  }
  if (key === 'not') return { not: nested(parseCondition(value, at, depth + 1), at) };
  if (!isLeafCondition(key)) throw new PolicyError(at, 'unknown condition'); // singleKey already refused it
  return { [key]: parseAt(CONDITIONS[key].schema, value, at) } as ConditionSpec;
}

/** Rate limits and budgets charge on permit; under any_of/not "charged" would have no clear meaning. */
function nested(cond: ConditionSpec, path: string): ConditionSpec {
  const key = Object.keys(cond)[0] as string;
  if (STATEFUL_CONDITIONS.has(key)) throw new PolicyError(`${path}.${key}`, `${key} cannot sit inside any_of or not`);
  return cond;
}

const INVARIANT_RULES = Object.keys(INVARIANT_SCHEMAS);

export function parseInvariant(raw: unknown, path: string): FileInvariantSpec {
  if (Array.isArray(raw)) return parseInvariantTuple(raw, path);
  if (raw === null || typeof raw !== 'object')
    throw new PolicyError(path, 'an invariant must be a table (or Kavach\'s ["name", "field", max])');
  const record = raw as Record<string, unknown>;
  const { name, description, actions, ...rest } = record;
  if (typeof name !== 'string' || name.length === 0) throw new PolicyError(`${path}.name`, 'must be a non-empty string');
  if (description !== undefined && typeof description !== 'string') throw new PolicyError(`${path}.description`, 'must be a string');
  // A misspelt key beside a rule (`descripton`, `action`) is the mistake to name, not "two keys".
  const keys = Object.keys(rest);
  const stray = keys.find((k) => !INVARIANT_RULES.includes(k));
  if (stray !== undefined && keys.some((k) => INVARIANT_RULES.includes(k))) {
    const hint =
      stray === 'combining'
        ? ' (in TOML, write combining above the first [[invariant]] table)'
        : suggest(stray, ['name', 'description', 'actions', ...INVARIANT_RULES]);
    throw new PolicyError(`${path}.${stray}`, `unknown key${hint}`);
  }
  const key = singleKey(rest, path, 'invariant rule', INVARIANT_RULES);
  const schema = INVARIANT_SCHEMAS[key as keyof typeof INVARIANT_SCHEMAS];
  const spec = { name, [key]: parseAt(schema, rest[key], `${path}.${key}`) } as FileInvariantSpec;
  if (description !== undefined) spec.description = description;
  if (actions !== undefined) spec.actions = parseAt(INVARIANT_SCHEMAS.allowed_actions, actions, `${path}.actions`);
  return spec;
}

/**
 * Kavach's shorthand `["hard_cap", "amount", 50000]`: a param_max named hard_cap on every action.
 * The seed defines only this (name, field, max) form, so nothing else is read as a tuple.
 */
function parseInvariantTuple(raw: readonly unknown[], path: string): FileInvariantSpec {
  if (raw.length !== 3) {
    throw new PolicyError(
      path,
      `an invariant tuple is ["name", "field", max] (a param_max), found ${raw.length} item${raw.length === 1 ? '' : 's'}; write a table for anything else`,
    );
  }
  const [name, field, max] = raw;
  if (typeof name !== 'string' || name.length === 0) throw new PolicyError(`${path}[0]`, 'the name must be a non-empty string');
  // The field is checked as a param_max field is (a key or a JSON Pointer).
  const checked = parseAt(INVARIANT_SCHEMAS.param_max.shape.field, field, `${path}[1]`);
  if (typeof max !== 'number' || !Number.isFinite(max)) throw new PolicyError(`${path}[2]`, 'the max must be a finite number');
  return { name, param_max: { field: checked, max } };
}
