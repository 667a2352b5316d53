/**
 * Signatures made outside this process (an HSM, a KMS, a signing service): the secret key never
 * enters it. The external functions sign the exact bytes of a Kavach envelope (signatures.ts);
 * every signature they return is verified against the key's public half before it is used, so an
 * HSM that answers junk, or signs with another key, fails here, at signing time, not in a verifier
 * far away. A throw, a non-answer within `timeoutMs` or a bad signature is an Error: the gate turns
 * it into Refuse SIGNING_FAILED.
 */
import { ED25519_SIGNATURE, MLDSA65_SIGNATURE, ed25519Verify, mlDsa } from './backend.ts';
import { resolveBundle, type PublicKeyBundle, type ResolvedBundle } from './keys.ts';
import { assembleEnvelope, envelopeInput, type SignatureMode } from './signatures.ts';

export const DEFAULT_EXTERNAL_TIMEOUT_MS = 5_000;
const MAX_TIMEOUT_MS = 600_000;

export interface ExternalSignerOptions {
  /** The key's public bundle, as `KeyPair.publicKeys()` gives it: every signature is checked against it. */
  publicKeys: PublicKeyBundle;
  /** The key id; when given it must equal `publicKeys.kid` (a guard against wiring the wrong bundle). */
  kid?: string;
  /**
   * ML-DSA-65 signature (FIPS 204 ML-DSA.Sign, 3309 bytes) of `message` under the FIPS 204 context
   * string `context` (1 to 255 bytes, e.g. "kavach/permit"). Pure ML-DSA, not HashML-DSA.
   */
  signMlDsa(message: Uint8Array, context: Uint8Array): Promise<Uint8Array> | Uint8Array;
  /** Ed25519 signature (RFC 8032, 64 bytes) of `message`. Required for hybrid mode. */
  signEd25519?(message: Uint8Array): Promise<Uint8Array> | Uint8Array;
  /** Longest wait for one external signature before the permit is refused (default 5000 ms). */
  timeoutMs?: number;
}

/** Signs envelopes through external functions, checking each signature before it is used. */
export class ExternalEnvelopeSigner {
  readonly kid: string;
  readonly mode: SignatureMode;
  /** ms since epoch, from the bundle; undefined = never expires. */
  readonly expiresAt: number | undefined;
  readonly #key: ResolvedBundle;
  readonly #signMlDsa: ExternalSignerOptions['signMlDsa'];
  readonly #signEd25519: ExternalSignerOptions['signEd25519'];
  readonly #timeoutMs: number;

  constructor(opts: ExternalSignerOptions, mode: SignatureMode) {
    if (typeof opts !== 'object' || opts === null) throw new TypeError('external signer options must be an object');
    if (mode !== 'hybrid' && mode !== 'pq') throw new TypeError("PermitSigner mode must be 'hybrid' or 'pq'");
    this.#key = resolveBundle(opts.publicKeys);
    this.kid = this.#key.bundle.kid;
    if (opts.kid !== undefined && opts.kid !== this.kid) {
      throw new TypeError(`external signer kid ${JSON.stringify(opts.kid)} is not the kid of its public keys (${this.kid})`);
    }
    if (typeof opts.signMlDsa !== 'function') throw new TypeError('external signer needs signMlDsa(message, context)');
    if (opts.signEd25519 !== undefined && typeof opts.signEd25519 !== 'function') throw new TypeError('signEd25519 must be a function');
    if (mode === 'hybrid' && opts.signEd25519 === undefined) throw new TypeError('a hybrid external signer needs signEd25519(message)');
    const timeoutMs = opts.timeoutMs ?? DEFAULT_EXTERNAL_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new TypeError(`timeoutMs must be an integer from 1 to ${MAX_TIMEOUT_MS}`);
    }
    this.mode = mode;
    this.expiresAt = this.#key.bundle.expires;
    this.#signMlDsa = opts.signMlDsa.bind(opts);
    this.#signEd25519 = opts.signEd25519?.bind(opts);
    this.#timeoutMs = timeoutMs;
  }

  /** True when the key has an expiry and `now` is at or past it. */
  isExpired(now: number): boolean {
    return this.expiresAt !== undefined && now >= this.expiresAt;
  }

  /** A base64url envelope over `message` in `domain`, both halves verified. */
  async sign(domain: string, message: Uint8Array): Promise<string> {
    const input = envelopeInput(this.kid, this.mode, domain, message);
    // Each function gets its own copy: an external signer that mutates its input cannot change
    // what the other signs or what is verified.
    const signEd25519 = this.#signEd25519;
    const [pqSig, edSig] = await Promise.all([
      this.#call('ML-DSA-65', () => this.#signMlDsa(input.data.slice(), input.context.slice())),
      this.mode === 'hybrid' && signEd25519 ? this.#call('Ed25519', () => signEd25519(input.data.slice())) : undefined,
    ]);
    if (pqSig.length !== MLDSA65_SIGNATURE || !mlDsa().verify(this.#key.mldsa65, input.data, pqSig, input.context)) {
      throw new Error(`the external ML-DSA-65 signature does not verify under key ${this.kid}`);
    }
    if (edSig !== undefined && (edSig.length !== ED25519_SIGNATURE || !ed25519Verify(this.#key.ed25519, input.data, edSig))) {
      throw new Error(`the external Ed25519 signature does not verify under key ${this.kid}`);
    }
    return assembleEnvelope(input, pqSig, edSig);
  }

  /** Runs one external call: a sync throw, a rejection, a non-answer or a non-byte answer is an Error. */
  async #call(algorithm: string, run: () => Promise<Uint8Array> | Uint8Array): Promise<Uint8Array> {
    const late = new Error(`the external ${algorithm} signer did not answer within ${this.#timeoutMs} ms`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(late), this.#timeoutMs);
    });
    let answer: unknown;
    try {
      // race() subscribes to the external promise too, so its late rejection is never unhandled.
      answer = await Promise.race([Promise.resolve().then(run), timeout]);
    } catch (err) {
      if (err === late) throw err;
      throw new Error(`the external ${algorithm} signer failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    if (!(answer instanceof Uint8Array)) throw new Error(`the external ${algorithm} signer returned ${describe(answer)}, not a Uint8Array`);
    return new Uint8Array(answer); // a copy the external code cannot change after the check
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return typeof value;
}
