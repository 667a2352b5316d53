// PermitSigner.fromExternal with the key in ANOTHER process (fixtures/hsm-signer.ts): this
// process only ever sees the public bundle and the signatures.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { InMemoryReplayStore } from '../../src/engine/stores.ts';
import type { PublicKeyBundle } from '../../src/crypto/keys.ts';
import { PublicKeyDirectory } from '../../src/crypto/key-directory.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import type { SignatureMode } from '../../src/crypto/signatures.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/hsm-signer.ts', import.meta.url));
const POLICY = { policies: [{ name: 'refunds', effect: 'permit', conditions: [{ action: 'billing.refund' }] }] };
const CTX = {
  principalId: 'agent-7',
  principalKind: 'agent' as const,
  actionName: 'billing.refund',
  params: { order: 'A-1', amount: 12 },
  audience: 'billing',
};

/** The test's side of the line protocol: one request per signature, answers matched by id. */
class SignerProcess {
  readonly bundle: Promise<PublicKeyBundle>;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, { resolve: (sig: Uint8Array) => void; reject: (err: Error) => void }>();
  #nextId = 1;
  #exited = false;
  requests = 0;

  constructor() {
    this.#child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: this.#child.stdout });
    let resolveBundle: (b: PublicKeyBundle) => void;
    let rejectBundle: (err: Error) => void;
    this.bundle = new Promise((resolve, reject) => {
      resolveBundle = resolve;
      rejectBundle = reject;
    });
    let first = true;
    lines.on('line', (line) => {
      if (first) {
        first = false;
        resolveBundle((JSON.parse(line) as { bundle: PublicKeyBundle }).bundle);
        return;
      }
      const [id, status, ...rest] = line.split(' ');
      const waiter = this.#pending.get(Number(id));
      if (!waiter) return;
      this.#pending.delete(Number(id));
      if (status === 'ok') waiter.resolve(new Uint8Array(Buffer.from(rest[0] ?? '', 'base64url')));
      else waiter.reject(new Error(`signer process: ${rest.join(' ')}`));
    });
    this.#child.on('exit', (code) => {
      this.#exited = true;
      rejectBundle(new Error(`signer process exited (${code}) before its bundle`));
      for (const waiter of this.#pending.values()) waiter.reject(new Error('signer process exited'));
      this.#pending.clear();
    });
  }

  #request(op: string, ...args: Uint8Array[]): Promise<Uint8Array> {
    if (this.#exited) return Promise.reject(new Error('signer process is not running'));
    this.requests++;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.stdin.write(`${id} ${op} ${args.map((a) => Buffer.from(a).toString('base64url')).join(' ')}\n`);
    });
  }

  signMlDsa = (message: Uint8Array, context: Uint8Array) => this.#request('mldsa', message, context);
  signEd25519 = (message: Uint8Array) => this.#request('ed25519', message);

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = once(this.#child, 'exit');
    this.#child.kill();
    await exited;
  }
}

let hsm: SignerProcess;
let bundle: PublicKeyBundle;

beforeAll(async () => {
  hsm = new SignerProcess();
  bundle = await hsm.bundle;
});

afterAll(async () => {
  await hsm?.stop();
});

function externalSigner(mode: SignatureMode, extra: { batch?: { maxSize: number; maxDelayMs: number } } = {}): PermitSigner {
  return PermitSigner.fromExternal({
    kid: bundle.kid,
    mode,
    publicKeys: bundle,
    signMlDsa: hsm.signMlDsa,
    ...(mode === 'hybrid' ? { signEd25519: hsm.signEd25519 } : {}),
    ...extra,
  });
}

function verifier(mode: SignatureMode): PermitVerifier {
  return new PermitVerifier({ keys: PublicKeyDirectory.inMemory([bundle]), mode, audience: 'billing', replay: new InMemoryReplayStore() });
}

describe('a PermitSigner whose key lives in another process', () => {
  for (const mode of ['hybrid', 'pq'] as const) {
    it(`signs ${mode} permits through the gate that a PermitVerifier accepts, bound to the call`, async () => {
      const signer = externalSigner(mode);
      const gate = Gate.fromDict(POLICY, { signer, drift: false });
      const verdict = await gate.evaluate(CTX);
      expect(verdict.kind).toBe('permit');
      if (verdict.kind !== 'permit') return;
      const claims = await verifier(mode).verify(verdict.permit as string, {
        action: 'billing.refund',
        args: { amount: 12, order: 'A-1' },
      });
      expect(claims).toMatchObject({ kid: bundle.kid, sub: 'agent-7', act: 'billing.refund', aud: 'billing' });
      await expect(verifier(mode === 'pq' ? 'hybrid' : 'pq').verify(verdict.permit as string)).rejects.toMatchObject({
        code: 'ALG_MISMATCH',
      });
      await gate.close();
      await signer.close();
    });
  }

  it('batch-signs: permits issued together share one external signature and each verifies', async () => {
    const signer = externalSigner('hybrid', { batch: { maxSize: 4, maxDelayMs: 60_000 } });
    const gate = Gate.fromDict(POLICY, { signer, drift: false });
    const before = hsm.requests;
    const verdicts = await Promise.all([1, 2, 3, 4].map((n) => gate.evaluate({ ...CTX, params: { order: `B-${n}` } })));
    expect(hsm.requests - before).toBe(2); // one ML-DSA + one Ed25519 signature for the four
    const tool = verifier('hybrid');
    for (const [i, verdict] of verdicts.entries()) {
      expect(verdict.kind).toBe('permit');
      if (verdict.kind !== 'permit') continue;
      expect((verdict.permit as string).split('.')).toHaveLength(4);
      await tool.verify(verdict.permit as string, { args: { order: `B-${i + 1}` } });
    }
    await gate.close();
    await signer.close();
  });

  it('refuses SIGNING_FAILED once the signer process is gone', async () => {
    const signer = externalSigner('pq');
    const gate = Gate.fromDict(POLICY, { signer, drift: false });
    await hsm.stop();
    const verdict = await gate.evaluate(CTX);
    expect(verdict).toMatchObject({ kind: 'refuse', code: 'SIGNING_FAILED', evaluator: 'signer' });
    await gate.close();
    await signer.close();
  });
});
