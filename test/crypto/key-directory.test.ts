import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyPair, type PublicKeyBundle } from '../../src/crypto/keys.ts';
import { PublicKeyDirectory, buildSignedManifest } from '../../src/crypto/key-directory.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { PermitVerifier } from '../../src/crypto/permit-verifier.ts';
import { T0, rejectsWith, throwsWith } from './helpers.ts';

let root: KeyPair;
let rogue: KeyPair;
let a: KeyPair;
let b: KeyPair;
let dir: string;
const clock = () => T0;

beforeAll(async () => {
  root = KeyPair.generate({ now: T0 });
  rogue = KeyPair.generate({ now: T0 });
  a = KeyPair.generate({ now: T0 });
  b = KeyPair.generate({ now: T0 });
  dir = await mkdtemp(join(tmpdir(), 'kavach-dir-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function manifest(keys: PublicKeyBundle[], version: number, signer = root): string {
  return buildSignedManifest(keys, signer, { version, now: T0 });
}

async function permitBy(kp: KeyPair): Promise<string> {
  const req = {
    principalId: 'p',
    principalKind: 'agent' as const,
    action: 'x.y',
    args: {},
    evaluationId: 'e',
    issuedAt: T0,
    expiresAt: T0 + 30_000,
  };
  return (await PermitSigner.fromKeyPair(kp, { mode: 'hybrid' }).issue(req)).token;
}

describe('public key directories', () => {
  it('read public.json as one bundle, an array, or { keys }', async () => {
    const p = join(dir, 'public.json');
    for (const body of [a.publicKeys(), [a.publicKeys(), b.publicKeys()], { keys: [a.publicKeys()] }]) {
      await writeFile(p, JSON.stringify(body));
      expect(PublicKeyDirectory.fromFile(p).get(a.kid)).toEqual(a.publicKeys());
    }
  });

  it('refuse duplicate kids and bundles whose kid does not match their keys', () => {
    throwsWith(() => PublicKeyDirectory.inMemory([a.publicKeys(), a.publicKeys()]), 'BAD_FORMAT');
    throwsWith(() => PublicKeyDirectory.inMemory([{ ...a.publicKeys(), kid: b.kid }]), 'BAD_FORMAT');
  });

  it('keep the previous keys when a plain file reload fails', async () => {
    const p = join(dir, 'reload.json');
    await writeFile(p, JSON.stringify([a.publicKeys()]));
    const d = PublicKeyDirectory.fromFile(p);
    await writeFile(p, '{ not json');
    throwsWith(() => d.reload(), 'BAD_FORMAT');
    expect(d.has(a.kid)).toBe(true);
    await writeFile(p, JSON.stringify([b.publicKeys()]));
    d.reload();
    expect(d.has(a.kid)).toBe(false);
    expect(d.has(b.kid)).toBe(true);
  });
});

describe('signed key manifests', () => {
  it('load when signed by the root and carry their version', async () => {
    const p = join(dir, 'keys.signed.json');
    await writeFile(p, manifest([a.publicKeys()], 1));
    const d = PublicKeyDirectory.fromSignedFile(p, root.publicKeys(), { clock });
    expect(d.version).toBe(1);
    expect(d.list().map((k) => k.kid)).toEqual([a.kid]);
  });

  it('refuse a manifest signed by another key (UNKNOWN_KEY)', () => {
    throwsWith(
      () => PublicKeyDirectory.fromSignedManifest(manifest([a.publicKeys()], 1, rogue), root.publicKeys(), { clock }),
      'UNKNOWN_KEY',
    );
  });

  it('refuse a manifest with a key added after signing (BAD_SIGNATURE)', () => {
    const m = JSON.parse(manifest([a.publicKeys()], 1));
    m.keys.push(rogue.publicKeys());
    throwsWith(() => PublicKeyDirectory.fromSignedManifest(JSON.stringify(m), root.publicKeys(), { clock }), 'BAD_SIGNATURE');
  });

  it('refuse a manifest whose version was bumped after signing (BAD_SIGNATURE)', () => {
    const m = JSON.parse(manifest([a.publicKeys()], 1));
    m.version = 99;
    throwsWith(() => PublicKeyDirectory.fromSignedManifest(JSON.stringify(m), root.publicKeys(), { clock }), 'BAD_SIGNATURE');
  });

  it('refuse a key swapped inside a signed manifest (BAD_SIGNATURE)', () => {
    const m = JSON.parse(manifest([a.publicKeys()], 1));
    m.keys[0] = b.publicKeys();
    throwsWith(() => PublicKeyDirectory.fromSignedManifest(JSON.stringify(m), root.publicKeys(), { clock }), 'BAD_SIGNATURE');
  });

  it('refuse a stripped signature, a missing one, unknown fields and non-JSON (BAD_FORMAT)', () => {
    const m = JSON.parse(manifest([a.publicKeys()], 1));
    for (const bad of [
      { ...m, signature: '' },
      { ...m, signature: undefined },
      { ...m, extra: 1 },
      { ...m, format: 'kavach-keys/2' },
    ]) {
      throwsWith(() => PublicKeyDirectory.fromSignedManifest(JSON.stringify(bad), root.publicKeys(), { clock }), 'BAD_FORMAT');
    }
    throwsWith(() => PublicKeyDirectory.fromSignedManifest('nope', root.publicKeys(), { clock }), 'BAD_FORMAT');
  });

  it('refuse a PQ-signed manifest where hybrid is expected (ALG_MISMATCH)', () => {
    const m = buildSignedManifest([a.publicKeys()], root, { version: 1, mode: 'pq', now: T0 });
    throwsWith(() => PublicKeyDirectory.fromSignedManifest(m, root.publicKeys(), { clock }), 'ALG_MISMATCH');
    expect(PublicKeyDirectory.fromSignedManifest(m, root.publicKeys(), { clock, mode: 'pq' }).version).toBe(1);
  });

  it('refuse rollback to an older version, and a different manifest under the held version (ROLLBACK)', () => {
    const d = PublicKeyDirectory.fromSignedManifest(manifest([a.publicKeys(), b.publicKeys()], 2), root.publicKeys(), { clock });
    throwsWith(() => d.applyManifest(manifest([a.publicKeys()], 1)), 'ROLLBACK');
    throwsWith(() => d.applyManifest(manifest([a.publicKeys()], 2)), 'ROLLBACK');
    expect(d.version).toBe(2);
    expect(d.size).toBe(2);
    d.applyManifest(manifest([a.publicKeys(), b.publicKeys()], 2)); // the same one again: no change
    d.applyManifest(manifest([b.publicKeys()], 3));
    expect(d.version).toBe(3);
    expect(d.list().map((k) => k.kid)).toEqual([b.kid]);
  });

  it('refuse, in a fresh process, a manifest below the pinned minimum version (ROLLBACK)', () => {
    throwsWith(
      () => PublicKeyDirectory.fromSignedManifest(manifest([a.publicKeys()], 3), root.publicKeys(), { clock, minVersion: 4 }),
      'ROLLBACK',
    );
    expect(PublicKeyDirectory.fromSignedManifest(manifest([a.publicKeys()], 4), root.publicKeys(), { clock, minVersion: 4 }).version).toBe(
      4,
    );
  });

  it('keep the previous keys when a file reload is forged, damaged or older', async () => {
    const p = join(dir, 'rotate.signed.json');
    await writeFile(p, manifest([a.publicKeys()], 5));
    const d = PublicKeyDirectory.fromSignedFile(p, root.publicKeys(), { clock });
    for (const [text, code] of [
      [manifest([rogue.publicKeys()], 6, rogue), 'UNKNOWN_KEY'],
      ['{"format":', 'BAD_FORMAT'],
      [manifest([b.publicKeys()], 4), 'ROLLBACK'],
    ] as const) {
      await writeFile(p, text);
      throwsWith(() => d.reload(), code);
      expect(d.version).toBe(5);
      expect(d.list().map((k) => k.kid)).toEqual([a.kid]);
    }
  });

  it('refuse a manifest signed by a root key that has expired (KEY_EXPIRED)', () => {
    const shortRoot = KeyPair.generate({ now: T0, expiresInMs: 1_000 });
    const m = buildSignedManifest([a.publicKeys()], shortRoot, { version: 1, now: T0 });
    expect(PublicKeyDirectory.fromSignedManifest(m, shortRoot.publicKeys(), { clock }).version).toBe(1);
    throwsWith(() => PublicKeyDirectory.fromSignedManifest(m, shortRoot.publicKeys(), { clock: () => T0 + 1_000 }), 'KEY_EXPIRED');
  });

  it('rotate: permits by the old key verify until a manifest removes it', async () => {
    const d = PublicKeyDirectory.fromSignedManifest(manifest([a.publicKeys()], 1), root.publicKeys(), { clock });
    const v = new PermitVerifier({ keys: d, mode: 'hybrid', clock });
    const oldPermit = await permitBy(a);
    await v.verify(oldPermit);
    await rejectsWith(v.verify(await permitBy(b)), 'UNKNOWN_KEY');
    d.applyManifest(manifest([a.publicKeys(), b.publicKeys()], 2)); // new key published beside the old
    await v.verify(oldPermit);
    await v.verify(await permitBy(b));
    d.applyManifest(manifest([b.publicKeys()], 3)); // old key retired
    await rejectsWith(v.verify(oldPermit), 'UNKNOWN_KEY');
    await v.verify(await permitBy(b));
  });
});
