/**
 * Where verifiers find public keys by kid. Three sources: bundles in memory, a JSON file of
 * bundles, or a manifest signed by a root key. A signed directory never goes back: a manifest
 * older than (or conflicting with) the one it holds is refused, and any failed reload keeps the
 * previous keys. Rotation = publish a manifest with the new key added; old permits keep verifying
 * until a later manifest drops their key.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { canonicalJson } from '../engine/canonical-json.ts';
import { toBase64Url, utf8 } from './encoding.ts';
import { PermitError } from './errors.ts';
import { publicKeyBundleSchema, resolveBundle, type KeyPair, type PublicKeyBundle } from './keys.ts';
import { signEnvelopeBytes, verifyEnvelopeSync, type KeyLookup, type SignatureMode } from './signatures.ts';

export const MANIFEST_FORMAT = 'kavach-keys/1';
export const MANIFEST_DOMAIN = 'key-manifest';

const manifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  issuedAt: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  keys: z.array(publicKeyBundleSchema).max(10_000),
  signature: z.string(),
});

export interface SignedDirectoryOptions {
  /** Signature mode of the manifest (default 'hybrid'). */
  mode?: SignatureMode;
  /** ms since epoch, for the root key's expiry; tests inject it. */
  clock?: () => number;
  /**
   * Lowest manifest version to accept, e.g. the last one seen before a restart: a fresh process
   * has no held version, so this is what stops it from being fed an old (validly signed) manifest.
   */
  minVersion?: number;
}

type Source =
  | { kind: 'memory' }
  | { kind: 'file'; path: string }
  | { kind: 'signed'; path: string | undefined; root: PublicKeyBundle; mode: SignatureMode; clock: () => number; minVersion: number };

function freezeBundles(list: readonly unknown[]): Map<string, PublicKeyBundle> {
  const map = new Map<string, PublicKeyBundle>();
  list.forEach((value, i) => {
    let bundle: PublicKeyBundle;
    try {
      bundle = Object.freeze({ ...resolveBundle(value).bundle });
    } catch (err) {
      throw new PermitError('BAD_FORMAT', `keys[${i}]: ${(err as Error).message}`);
    }
    if (map.has(bundle.kid)) throw new PermitError('BAD_FORMAT', `keys[${i}]: duplicate kid ${bundle.kid}`);
    map.set(bundle.kid, bundle);
  });
  return map;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new PermitError('BAD_FORMAT', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PermitError('BAD_FORMAT', `${what} is not JSON: ${(err as Error).message}`);
  }
}

/** A plain key file: one bundle, an array of bundles, or `{ "keys": [...] }`. */
function bundlesFromJson(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (
    value &&
    typeof value === 'object' &&
    'keys' in value &&
    Object.keys(value).length === 1 &&
    Array.isArray((value as { keys: unknown }).keys)
  ) {
    return (value as { keys: unknown[] }).keys;
  }
  if (value && typeof value === 'object' && 'kid' in value) return [value];
  throw new PermitError('BAD_FORMAT', 'expected a public key bundle, an array of them, or { "keys": [...] }');
}

interface VerifiedManifest {
  version: number;
  issuedAt: number;
  digest: string;
  keys: Map<string, PublicKeyBundle>;
}

function verifyManifest(text: string, root: PublicKeyBundle, mode: SignatureMode, now: number): VerifiedManifest {
  const parsed = manifestSchema.safeParse(parseJson(text, 'key manifest'));
  if (!parsed.success) {
    throw new PermitError(
      'BAD_FORMAT',
      `key manifest is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  const { signature, ...payload } = parsed.data;
  const body = canonicalJson(payload);
  verifyEnvelopeSync(root, mode, MANIFEST_DOMAIN, utf8(body), signature, { now });
  return { version: payload.version, issuedAt: payload.issuedAt, digest: body, keys: freezeBundles(payload.keys) };
}

/** Signs a key manifest with the root key; the result is what `fromSignedFile` reads. */
export function buildSignedManifest(
  bundles: readonly PublicKeyBundle[],
  root: KeyPair,
  opts: { version: number; mode?: SignatureMode; now?: number },
): string {
  if (!Number.isSafeInteger(opts?.version) || opts.version <= 0) throw new TypeError('manifest version must be a positive integer');
  const keys = [...freezeBundles(bundles).values()];
  const payload = { format: MANIFEST_FORMAT, version: opts.version, issuedAt: opts.now ?? Date.now(), keys };
  const signature = toBase64Url(signEnvelopeBytes(root, opts.mode ?? 'hybrid', MANIFEST_DOMAIN, utf8(canonicalJson(payload))));
  return `${JSON.stringify({ ...payload, signature }, null, 2)}\n`;
}

export class PublicKeyDirectory implements KeyLookup {
  #keys: Map<string, PublicKeyBundle>;
  #source: Source;
  #manifest: { version: number; issuedAt: number; digest: string } | undefined;

  private constructor(keys: Map<string, PublicKeyBundle>, source: Source) {
    this.#keys = keys;
    this.#source = source;
  }

  static inMemory(bundles: readonly PublicKeyBundle[] | PublicKeyBundle): PublicKeyDirectory {
    return new PublicKeyDirectory(freezeBundles(Array.isArray(bundles) ? bundles : [bundles]), { kind: 'memory' });
  }

  /** Reads a JSON file of bundles (e.g. the `public.json` that `kavach keygen` writes). */
  static fromFile(path: string): PublicKeyDirectory {
    return new PublicKeyDirectory(freezeBundles(bundlesFromJson(parseJson(readText(path), path))), { kind: 'file', path });
  }

  /** Reads a manifest made by `buildSignedManifest` and checks it against `rootBundle`. */
  static fromSignedFile(path: string, rootBundle: PublicKeyBundle, opts: SignedDirectoryOptions = {}): PublicKeyDirectory {
    const dir = PublicKeyDirectory.#signed(path, rootBundle, opts);
    dir.applyManifest(readText(path));
    return dir;
  }

  /** A signed directory fed manifest texts by the caller (`applyManifest`), e.g. from a bus. */
  static fromSignedManifest(text: string, rootBundle: PublicKeyBundle, opts: SignedDirectoryOptions = {}): PublicKeyDirectory {
    const dir = PublicKeyDirectory.#signed(undefined, rootBundle, opts);
    dir.applyManifest(text);
    return dir;
  }

  static #signed(path: string | undefined, rootBundle: PublicKeyBundle, opts: SignedDirectoryOptions): PublicKeyDirectory {
    let root: PublicKeyBundle;
    try {
      root = Object.freeze({ ...resolveBundle(rootBundle).bundle });
    } catch (err) {
      throw new PermitError('BAD_FORMAT', `root key: ${(err as Error).message}`);
    }
    const mode = opts.mode ?? 'hybrid';
    if (mode !== 'hybrid' && mode !== 'pq') throw new TypeError("mode must be 'hybrid' or 'pq'");
    const minVersion = opts.minVersion ?? 0;
    if (!Number.isSafeInteger(minVersion) || minVersion < 0) throw new TypeError('minVersion must be a non-negative integer');
    return new PublicKeyDirectory(new Map(), { kind: 'signed', path, root, mode, clock: opts.clock ?? Date.now, minVersion });
  }

  get(kid: string): PublicKeyBundle | undefined {
    return this.#keys.get(kid);
  }

  has(kid: string): boolean {
    return this.#keys.has(kid);
  }

  list(): PublicKeyBundle[] {
    return [...this.#keys.values()];
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Version of the signed manifest held; undefined for unsigned directories. */
  get version(): number | undefined {
    return this.#manifest?.version;
  }

  /** In-memory directories only: add a key (rotation). */
  add(bundle: PublicKeyBundle): void {
    this.#mutable();
    const next = new Map(this.#keys);
    for (const [kid, b] of freezeBundles([bundle])) next.set(kid, b);
    this.#keys = next;
  }

  /** In-memory directories only: remove a key; permits it signed stop verifying (UNKNOWN_KEY). */
  remove(kid: string): boolean {
    this.#mutable();
    const next = new Map(this.#keys);
    const had = next.delete(kid);
    this.#keys = next;
    return had;
  }

  #mutable(): void {
    if (this.#source.kind !== 'memory') throw new TypeError('only in-memory directories change by add/remove; file-backed ones reload');
  }

  /**
   * Signed directories: verify and adopt a manifest. Refuses (PermitError ROLLBACK) one older than
   * the manifest held, or a different one with the same version. On any error nothing changes.
   */
  applyManifest(text: string): void {
    const src = this.#source;
    if (src.kind !== 'signed') throw new TypeError('applyManifest is for signed directories');
    const next = verifyManifest(text, src.root, src.mode, src.clock());
    if (next.version < src.minVersion)
      throw new PermitError('ROLLBACK', `manifest version ${next.version} is below the minimum ${src.minVersion}`);
    const held = this.#manifest;
    if (held) {
      if (next.version < held.version)
        throw new PermitError('ROLLBACK', `manifest version ${next.version} is older than the held version ${held.version}`);
      if (next.version === held.version) {
        if (next.digest !== held.digest) throw new PermitError('ROLLBACK', `a different manifest with the held version ${held.version}`);
        return;
      }
    }
    this.#keys = next.keys;
    this.#manifest = { version: next.version, issuedAt: next.issuedAt, digest: next.digest };
  }

  /** Re-reads the backing file. On any error the previous keys stay and the error is thrown. */
  reload(): void {
    const src = this.#source;
    if (src.kind === 'memory') return;
    if (src.kind === 'file') {
      this.#keys = freezeBundles(bundlesFromJson(parseJson(readText(src.path), src.path)));
      return;
    }
    if (src.path === undefined) throw new TypeError('this signed directory has no file; use applyManifest');
    this.applyManifest(readText(src.path));
  }
}
