import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as keygen } from '../../src/cli/keygen.ts';
import { run as permit } from '../../src/cli/permit.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';

let dir: string;
let out: string[];

function capture(): void {
  out = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kavach-cli-'));
});
afterEach(() => {
  vi.restoreAllMocks();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tokenFor(kp: KeyPair, mode: 'hybrid' | 'pq' = 'hybrid'): Promise<string> {
  const now = Date.now();
  const req = { principalId: 'alice', principalKind: 'agent' as const, action: 'fs.read', args: { path: '/a', n: 1 }, evaluationId: 'e', audience: 'fs', issuedAt: now, expiresAt: now + 30_000 };
  return (await PermitSigner.fromKeyPair(kp, { mode }).issue(req)).token;
}

describe('kavach keygen', () => {
  it('writes secret.key (0600) and public.json, and refuses to overwrite without --force', async () => {
    capture();
    const out1 = join(dir, 'plain');
    expect(await keygen(['--out', out1])).toBe(0);
    expect((await stat(join(out1, 'secret.key'))).mode & 0o777).toBe(0o600);
    const kp = await KeyPair.load(join(out1, 'secret.key'));
    expect(JSON.parse(await readFile(join(out1, 'public.json'), 'utf8'))).toEqual(kp.publicKeys());
    expect(out.join('')).toContain(kp.kid);
    expect(await keygen(['--out', out1])).toBe(1);
    expect(await keygen(['--out', out1, '--force'])).toBe(0);
    expect((await KeyPair.load(join(out1, 'secret.key'))).kid).not.toBe(kp.kid);
  });

  it('encrypts with the passphrase from --passphrase-env, and refuses an unset variable', async () => {
    capture();
    const out2 = join(dir, 'enc');
    process.env.KAVACH_TEST_PASS = 'a long passphrase';
    try {
      expect(await keygen(['--out', out2, '--passphrase-env', 'KAVACH_TEST_PASS', '--expires', '90d'])).toBe(0);
    } finally {
      delete process.env.KAVACH_TEST_PASS;
    }
    await expect(KeyPair.load(join(out2, 'secret.key'))).rejects.toMatchObject({ code: 'PASSPHRASE_REQUIRED' });
    const kp = await KeyPair.load(join(out2, 'secret.key'), { passphrase: 'a long passphrase' });
    expect(kp.expiresAt! - kp.createdAt).toBe(90 * 86_400_000);
    expect(await keygen(['--out', join(dir, 'enc2'), '--passphrase-env', 'KAVACH_TEST_UNSET'])).toBe(2);
  });
});

describe('kavach permit verify', () => {
  let kp: KeyPair;
  let keys: string;
  beforeAll(async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    keys = join(dir, 'v');
    await keygen(['--out', keys]);
    vi.restoreAllMocks();
    kp = await KeyPair.load(join(keys, 'secret.key'));
  });

  it('prints the claims of a good permit and exits 0', async () => {
    const token = await tokenFor(kp);
    capture();
    expect(await permit(['verify', token, '--keys', join(keys, 'public.json'), '--audience', 'fs', '--action', 'fs.read', '--args', '{"n":1,"path":"/a"}'])).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ sub: 'alice', act: 'fs.read', aud: 'fs', kid: kp.kid });
  });

  it.each([
    [['--audience', 'db'], 'WRONG_AUDIENCE'],
    [['--action', 'fs.write'], 'WRONG_ACTION'],
    [['--args', '{"path":"/etc/passwd","n":1}'], 'ARGS_MISMATCH'],
    [['--mode', 'pq'], 'ALG_MISMATCH'],
  ])('prints the error code and exits 1 (%j → %s)', async (extra, code) => {
    const token = await tokenFor(kp);
    capture();
    expect(await permit(['verify', token, '--keys', join(keys, 'public.json'), ...extra])).toBe(1);
    expect(out.join('').trim()).toBe(code);
  });

  it('says UNKNOWN_KEY for a permit by another key and BAD_FORMAT for garbage', async () => {
    const token = await tokenFor(KeyPair.generate());
    capture();
    expect(await permit(['verify', token, '--keys', join(keys, 'public.json')])).toBe(1);
    expect(await permit(['verify', 'kv1.e30.AAAA', '--keys', join(keys, 'public.json')])).toBe(1);
    expect(out.map((s) => s.trim())).toEqual(['UNKNOWN_KEY', 'BAD_FORMAT']);
  });

  it('runs through the kavach binary', async () => {
    const token = await tokenFor(kp, 'pq');
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/kavach.js', 'permit', 'verify', token, '--keys', join(keys, 'public.json'), '--mode', 'pq'], { encoding: 'utf8' });
    expect(JSON.parse(stdout)).toMatchObject({ kid: kp.kid, act: 'fs.read' });
  });
});
