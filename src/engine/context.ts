import { isIP } from 'node:net';
import { wellFormed } from './canonical-json.ts';

export const PRINCIPAL_KINDS = ['user', 'agent', 'service', 'scheduler', 'external'] as const;
export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number];

/** Who acts. Adapters take this from the host application, never from model output. */
export interface Principal {
  id: string;
  kind: PrincipalKind;
  roles?: string[];
}

/**
 * Where a call comes from: a country (Kavach's `GeoLocation("IN")`), coordinates, or both.
 * Country comparisons need only the country; a km threshold (tolerant drift) needs coordinates.
 */
export interface GeoLocation {
  /** Latitude and longitude come together or not at all. */
  lat?: number;
  lon?: number;
  /** ISO 3166-1 alpha-2, upper case. */
  country?: string;
  region?: string;
  city?: string;
}

export interface Coordinates {
  lat: number;
  lon: number;
}

/** JSON values as tools receive them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface ActionContext {
  principalId: string;
  principalKind: PrincipalKind;
  roles?: string[];
  /** MCP: "<server>.<tool>". */
  actionName: string;
  resource?: string;
  /** Any JSON object; conditions address nested fields by JSON Pointer. */
  params?: Record<string, unknown>;
  sessionId?: string;
  ip?: string;
  device?: string;
  geo?: GeoLocation;
  /** Where the session started; when absent the gate uses its own session state. */
  originIp?: string;
  originDevice?: string;
  originGeo?: GeoLocation;
  /** The same callId evaluated twice (same principal, action and args) charges budgets once. */
  callId?: string;
  /** Who the permit is for (MCP: the server name). */
  audience?: string;
}

/** A context that passed validation: params are a private deep copy of plain JSON. */
export interface ValidContext extends ActionContext {
  roles: string[];
  params: Record<string, JsonValue>;
}

export const CONTEXT_LIMITS = {
  maxIdLength: 256,
  maxRoles: 64,
  maxDepth: 32,
  maxNodes: 10_000,
  maxStringBytes: 1_000_000,
};

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const KNOWN_FIELDS = new Set([
  'principalId',
  'principalKind',
  'roles',
  'actionName',
  'resource',
  'params',
  'sessionId',
  'ip',
  'device',
  'geo',
  'originIp',
  'originDevice',
  'originGeo',
  'callId',
  'audience',
]);
const KIND_SET: ReadonlySet<string> = new Set(PRINCIPAL_KINDS);
// Control characters in identifiers make logs and audit lines lie about what happened.
const CONTROL_CHARS = /[\u0000-\u001f\u007f\u2028\u2029]/;

export class ContextError extends Error {}

function fail(message: string): never {
  throw new ContextError(message);
}

function identifier(value: unknown, name: string, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string') fail(`${name} must be a string`);
  if (value.length === 0) fail(`${name} must not be empty`);
  if (value.length > CONTEXT_LIMITS.maxIdLength) fail(`${name} is longer than ${CONTEXT_LIMITS.maxIdLength} characters`);
  if (CONTROL_CHARS.test(value)) fail(`${name} contains control characters`);
  if (!wellFormed(value)) fail(`${name} is not well-formed Unicode (lone surrogate)`);
  return value;
}

function ipAddress(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  // isIP takes an IPv6 zone of any length (fe80::1%aaaa…): bound it like every other identifier.
  if (typeof value !== 'string' || value.length > 64 || isIP(value) === 0) fail(`${name} is not an IP address`);
  return value;
}

const GEO_FIELDS = ['lat', 'lon', 'country', 'region', 'city'];

function geoLocation(value: unknown, name: string, polluted = false): GeoLocation | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) fail(`${name} must be an object`);
  for (const key of Object.keys(value)) {
    if (!GEO_FIELDS.includes(key)) fail(`${name}.${key} is not a known field`);
  }
  const { lat, lon, country, region, city } = polluted ? ownFields(value) : (value as Record<string, unknown>);
  const geo: GeoLocation = polluted ? { lat: undefined, lon: undefined, country: undefined, region: undefined, city: undefined } : {};
  // Half a coordinate pair is a mistake, not a country-only location.
  if (lat !== undefined || lon !== undefined) {
    if (typeof lat !== 'number' || !Number.isFinite(lat) || lat < -90 || lat > 90) fail(`${name}.lat must be a number in [-90, 90]`);
    if (typeof lon !== 'number' || !Number.isFinite(lon) || lon < -180 || lon > 180) fail(`${name}.lon must be a number in [-180, 180]`);
    geo.lat = lat;
    geo.lon = lon;
  }
  if (country !== undefined) {
    if (typeof country !== 'string' || !/^[A-Za-z]{2}$/.test(country)) fail(`${name}.country must be an ISO 3166 alpha-2 code`);
    geo.country = country.toUpperCase();
  }
  if (geo.lat === undefined && geo.country === undefined) fail(`${name} needs a country, coordinates (lat and lon), or both`);
  if (region !== undefined) geo.region = identifier(region, `${name}.region`, true);
  if (city !== undefined) geo.city = identifier(city, `${name}.city`, true);
  return geo;
}

/**
 * A location as a session store hands it back: an object whose coordinates, if any, are a finite
 * pair (a store answering otherwise is malformed; drift could not be judged on it).
 */
export function storedGeoIsWellFormed(geo: unknown): boolean {
  if (geo === null || typeof geo !== 'object') return false;
  const { lat, lon } = geo as Record<string, unknown>;
  if (lat === undefined && lon === undefined) return true;
  return typeof lat === 'number' && Number.isFinite(lat) && typeof lon === 'number' && Number.isFinite(lon);
}

/** The object's own enumerable fields, each read once, on a null prototype. */
function ownFields(value: object): Record<string, unknown> {
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value)) out[key] = (value as Record<string, unknown>)[key];
  return out;
}

/** True when something assigned enumerable properties to Object.prototype (a pollution). */
function prototypePolluted(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Deep-copies params as plain JSON, refusing anything that is not (or that could pollute a prototype). */
function copyParams(value: unknown): Record<string, JsonValue> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) fail('params must be a plain object');
  const walk: Walk = { nodes: 0, bytes: 0, steps: [] };
  return copyJson(value, 0, walk) as Record<string, JsonValue>;
}

/** Counts for the size limits, and the keys down to the current value (joined only on failure). */
interface Walk {
  nodes: number;
  bytes: number;
  steps: (string | number)[];
}

function pathOf(walk: Walk): string {
  return walk.steps.reduce<string>((at, step) => (typeof step === 'number' ? `${at}[${step}]` : `${at}.${step}`), 'params');
}

function copyJson(value: unknown, depth: number, walk: Walk): JsonValue {
  if (++walk.nodes > CONTEXT_LIMITS.maxNodes) fail(`params has more than ${CONTEXT_LIMITS.maxNodes} values`);
  switch (typeof value) {
    case 'string':
      walk.bytes += value.length;
      if (walk.bytes > CONTEXT_LIMITS.maxStringBytes) fail(`params strings exceed ${CONTEXT_LIMITS.maxStringBytes} characters`);
      // Argument hashes, permits and audit records are canonical JSON, which has no lone surrogates.
      if (!wellFormed(value)) fail(`${pathOf(walk)} is not well-formed Unicode (lone surrogate)`);
      return value;
    case 'number':
      if (!Number.isFinite(value)) fail(`${pathOf(walk)} is not a finite number`);
      return value;
    case 'boolean':
      return value;
    case 'object': {
      if (value === null) return null;
      if (depth >= CONTEXT_LIMITS.maxDepth) fail(`params nest deeper than ${CONTEXT_LIMITS.maxDepth} levels`);
      if (Array.isArray(value)) {
        const out: JsonValue[] = new Array(value.length);
        for (let i = 0; i < value.length; i++) {
          walk.steps.push(i);
          out[i] = copyJson(value[i], depth + 1, walk);
          walk.steps.pop();
        }
        return out;
      }
      if (!isPlainObject(value)) fail(`${pathOf(walk)} is not plain JSON`);
      const out: Record<string, JsonValue> = {};
      for (const key of Object.keys(value)) {
        if (FORBIDDEN_KEYS.has(key)) fail(`${pathOf(walk)} has a forbidden key "${key}"`);
        if (!wellFormed(key)) fail(`${pathOf(walk)} has a key that is not well-formed Unicode`);
        walk.bytes += key.length;
        const item = value[key];
        if (item === undefined) continue; // JSON drops undefined; so do we
        walk.steps.push(key);
        out[key] = copyJson(item, depth + 1, walk);
        walk.steps.pop();
      }
      return out;
    }
    default:
      fail(`${pathOf(walk)} is not plain JSON (${typeof value})`);
  }
}

/**
 * Checks an untrusted context and returns the gate's own copy of it.
 * Throws ContextError with a reason fit for a refusal.
 */
export function validateContext(input: unknown): ValidContext {
  if (!isPlainObject(input)) fail('context must be a plain object');
  for (const key in input) {
    if (!KNOWN_FIELDS.has(key) && Object.hasOwn(input, key)) fail(`unknown context field "${key}"`);
  }
  // A pollution elsewhere in the process (enumerable junk on Object.prototype) must not lend a
  // context roles, origins or a callId: then only own properties are read, and absent fields
  // become own undefineds so nothing downstream reads through the prototype either.
  const polluted = prototypePolluted();
  // Each field is read once: a getter cannot show the checks one value and the copy another.
  const raw = polluted ? ownFields(input) : (input as Record<string, unknown>);
  const principalKind = raw.principalKind;
  if (typeof principalKind !== 'string' || !KIND_SET.has(principalKind)) {
    fail(`principalKind must be one of ${PRINCIPAL_KINDS.join(', ')}`);
  }
  const roles: string[] = [];
  const rawRoles = raw.roles;
  if (rawRoles !== undefined) {
    if (!Array.isArray(rawRoles)) fail('roles must be an array of strings');
    // Length and items read once each, by index: the array's own (or a subclass's) map must not
    // get to answer with roles nobody checked.
    const count: unknown = rawRoles.length;
    if (typeof count !== 'number' || count > CONTEXT_LIMITS.maxRoles) fail(`more than ${CONTEXT_LIMITS.maxRoles} roles`);
    for (let i = 0; i < count; i++) roles.push(identifier(rawRoles[i], `roles[${i}]`, true) as string);
  }
  const ctx: ValidContext = {
    principalId: identifier(raw.principalId, 'principalId', true) as string,
    principalKind: principalKind as PrincipalKind,
    roles,
    actionName: identifier(raw.actionName, 'actionName', true) as string,
    params: copyParams(raw.params),
  };
  const resource = raw.resource;
  if (resource !== undefined) {
    if (typeof resource !== 'string' || resource.length > 4096 || CONTROL_CHARS.test(resource) || !wellFormed(resource))
      fail('resource must be a well-formed string without control characters');
    ctx.resource = resource;
  }
  let v: unknown;
  if ((v = raw.sessionId) !== undefined) ctx.sessionId = identifier(v, 'sessionId', true);
  if ((v = raw.device) !== undefined) ctx.device = identifier(v, 'device', true);
  if ((v = raw.originDevice) !== undefined) ctx.originDevice = identifier(v, 'originDevice', true);
  if ((v = raw.callId) !== undefined) ctx.callId = identifier(v, 'callId', true);
  if ((v = raw.audience) !== undefined) ctx.audience = identifier(v, 'audience', true);
  if ((v = raw.ip) !== undefined) ctx.ip = ipAddress(v, 'ip');
  if ((v = raw.originIp) !== undefined) ctx.originIp = ipAddress(v, 'originIp');
  if ((v = raw.geo) !== undefined) ctx.geo = geoLocation(v, 'geo', polluted);
  if ((v = raw.originGeo) !== undefined) ctx.originGeo = geoLocation(v, 'originGeo', polluted);
  if (polluted) {
    for (const key of KNOWN_FIELDS) if (!Object.hasOwn(ctx, key)) (ctx as unknown as Record<string, unknown>)[key] = undefined;
  }
  return ctx;
}
