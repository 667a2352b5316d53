/**
 * Cross-backend check, run on a Node that has ML-DSA in node:crypto (≥ 24.6, OpenSSL 3.5):
 *
 *   npx -y -p node@24 node --import tsx test/crypto/node24-cross-backend.ts
 *
 * Signs with node:crypto and verifies with @noble/post-quantum and the reverse, with FIPS 204
 * context strings; then a full round trip: permits, envelopes and a signed key manifest made by a
 * native-backend KeyPair are verified by a child process forced onto noble
 * (KAVACH_CRYPTO_BACKEND=noble) from the same secret bytes, and the child's are verified here.
 * A plain script (not vitest): exits non-zero on any failure, prints one line per check.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { cryptoBackend, nativeMlDsa, nobleMlDsa } from '../../src/crypto/backend.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PublicKeyDirectory, buildSignedManifest } from '../../src/crypto/key-directory.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { signEnvelope, verifyEnvelope } from '../../src/crypto/signatures.ts';

const T0 = 1_800_000_000_000;
const ARGS = { path: '/tmp/x', n: [1, 2, 3] };
const REQ = {
  principalId: 'alice',
  principalKind: 'agent' as const,
  action: 'fs.read',
  args: ARGS,
  evaluationId: 'e1',
  audience: 'fs',
  issuedAt: T0,
  expiresAt: T0 + 30_000,
};
const MSG = new TextEncoder().encode('cross-backend envelope');

interface ChildOut {
  backend: string;
  kid: string;
  tokens: { hybrid: string; pq: string };
  envelope: string;
  manifest: string;
  verified: string[];
}

async function child(): Promise<void> {
  const input = JSON.parse(await readStdin()) as {
    secret: string;
    tokens: { hybrid: string; pq: string };
    envelope: string;
    manifest: string;
  };
  const kp = KeyPair.fromSecretBytes(new Uint8Array(Buffer.from(input.secret, 'hex')));
  const verified: string[] = [];
  for (const mode of ['hybrid', 'pq'] as const) {
    const v = new PermitVerifier({ keys: kp.publicKeys(), mode, audience: 'fs', clock: () => T0 });
    await v.verify(input.tokens[mode], { action: 'fs.read', args: ARGS });
    verified.push(`permit/${mode}`);
  }
  await verifyEnvelope(kp.publicKeys(), 'hybrid', 'audit-checkpoint', MSG, input.envelope, { now: T0 });
  verified.push('envelope');
  PublicKeyDirectory.fromSignedManifest(input.manifest, kp.publicKeys(), { clock: () => T0 });
  verified.push('manifest');
  const out: ChildOut = {
    backend: cryptoBackend().mlDsa,
    kid: kp.kid,
    tokens: {
      hybrid: (await PermitSigner.fromKeyPair(kp, { mode: 'hybrid' }).issue(REQ)).token,
      pq: (await PermitSigner.fromKeyPair(kp, { mode: 'pq' }).issue(REQ)).token,
    },
    envelope: await signEnvelope(kp, 'hybrid', 'audit-checkpoint', MSG),
    manifest: buildSignedManifest([kp.publicKeys()], kp, { version: 1, now: T0 }),
    verified,
  };
  process.stdout.write(JSON.stringify(out));
}

async function parent(): Promise<number> {
  let failures = 0;
  const check = (name: string, ok: boolean) => {
    process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name}\n`);
    if (!ok) failures++;
  };
  process.stdout.write(`node ${process.version}, OpenSSL ${process.versions.openssl}\n`);
  const native = nativeMlDsa();
  check('node:crypto has ML-DSA-65 with FIPS 204 context support (probe passed)', native !== undefined);
  if (!native) return 1;
  check('the default backend is native', cryptoBackend().mlDsa === 'native');

  const contexts = [new Uint8Array(0), new TextEncoder().encode('kavach/permit'), new Uint8Array(randomBytes(255))];
  const messages = [new Uint8Array(0), new TextEncoder().encode('hello'), new Uint8Array(randomBytes(10_000))];
  for (let i = 0; i < 4; i++) {
    const seed = i === 0 ? new Uint8Array(32) : new Uint8Array(randomBytes(32));
    const n = native.fromSeed(seed);
    const b = nobleMlDsa.fromSeed(seed);
    check(`seed ${i}: same public key on both backends`, Buffer.from(n.publicKey).equals(Buffer.from(b.publicKey)));
    for (const [ci, ctx] of contexts.entries()) {
      const other = new TextEncoder().encode(`other-${ci}`);
      for (const [mi, msg] of messages.entries()) {
        const sn = n.sign(msg, ctx);
        const sb = b.sign(msg, ctx);
        const tag = `seed ${i} ctx ${ctx.length}B msg ${msg.length}B`;
        check(`${tag}: native sig verifies with noble`, nobleMlDsa.verify(b.publicKey, msg, sn, ctx));
        check(`${tag}: noble sig verifies with native`, native.verify(n.publicKey, msg, sb, ctx));
        if (mi === 1) {
          check(`${tag}: noble refuses native sig under another context`, !nobleMlDsa.verify(b.publicKey, msg, sn, other));
          check(`${tag}: native refuses noble sig under another context`, !native.verify(n.publicKey, msg, sb, other));
          const flipped = sn.slice();
          flipped[100] = (flipped[100] as number) ^ 1;
          check(
            `${tag}: both refuse a flipped signature`,
            !nobleMlDsa.verify(b.publicKey, msg, flipped, ctx) && !native.verify(n.publicKey, msg, flipped, ctx),
          );
        }
      }
    }
  }

  // Whole-stack round trip against a child process on noble.
  const kp = KeyPair.generate({ now: T0 });
  const input = {
    secret: Buffer.from(kp.toSecretBytes()).toString('hex'),
    tokens: {
      hybrid: (await PermitSigner.fromKeyPair(kp, { mode: 'hybrid' }).issue(REQ)).token,
      pq: (await PermitSigner.fromKeyPair(kp, { mode: 'pq' }).issue(REQ)).token,
    },
    envelope: await signEnvelope(kp, 'hybrid', 'audit-checkpoint', MSG),
    manifest: buildSignedManifest([kp.publicKeys()], kp, { version: 1, now: T0 }),
  };
  const run = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child'], {
    input: JSON.stringify(input),
    env: { ...process.env, KAVACH_CRYPTO_BACKEND: 'noble' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  check('noble child ran', run.status === 0);
  if (run.status !== 0) {
    process.stderr.write(run.stderr);
    return 1;
  }
  const out = JSON.parse(run.stdout) as ChildOut;
  check('child ran on noble', out.backend === 'noble');
  check('same secret bytes → same kid on both backends', out.kid === kp.kid);
  check(`noble verified native permits, envelope and manifest (${out.verified.join(', ')})`, out.verified.length === 4);
  for (const mode of ['hybrid', 'pq'] as const) {
    const v = new PermitVerifier({ keys: kp.publicKeys(), mode, audience: 'fs', clock: () => T0 });
    let ok = true;
    try {
      await v.verify(out.tokens[mode], { action: 'fs.read', args: ARGS });
    } catch {
      ok = false;
    }
    check(`native verifies a noble ${mode} permit`, ok);
  }
  let ok = true;
  try {
    await verifyEnvelope(kp.publicKeys(), 'hybrid', 'audit-checkpoint', MSG, out.envelope, { now: T0 });
    PublicKeyDirectory.fromSignedManifest(out.manifest, kp.publicKeys(), { clock: () => T0 });
  } catch {
    ok = false;
  }
  check('native verifies a noble envelope and signed manifest', ok);
  let refused = false;
  try {
    await verifyEnvelope(kp.publicKeys(), 'hybrid', 'invalidation', MSG, out.envelope, { now: T0 });
  } catch {
    refused = true;
  }
  check('native refuses a noble envelope under another domain (context string honoured)', refused);
  process.stdout.write(`${failures === 0 ? 'all cross-backend checks passed' : `${failures} cross-backend checks FAILED`}\n`);
  return failures === 0 ? 0 : 1;
}

if (process.argv.includes('--child')) {
  child().catch((err: unknown) => {
    process.stderr.write(`child: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
} else {
  parent().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}
