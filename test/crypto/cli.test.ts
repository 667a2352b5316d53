import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as keygen } from '../../src/cli/keygen.ts';
import { run as permit } from '../../src/cli/permit.ts';
import { buildSignedManifest } from '../../src/crypto/key-directory.ts';
import { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import type { SignatureMode } from '../../src/crypto/signatures.ts';

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

/** A permit by `signer` for alice, fs.read of /a, audience fs, issued now, signed without the worker pool. */
async function issueNow(signer: KeyPair, mode: SignatureMode, opts: { sessionId?: string } = {}): Promise<string> {
  const now = Date.now();
  const s = PermitSigner.fromKeyPair(signer, { mode, pool: false });
  try {
    return (
      await s.issue({
        principalId: 'alice',
        principalKind: 'agent',
        action: 'fs.read',
        args: { path: '/a' },
        evaluationId: 'e-1',
        audience: 'fs',
        issuedAt: now,
        expiresAt: now + 30_000,
        ...(opts.sessionId !== undefined ? { sessionId: opts.sessionId } : {}),
      })
    ).token;
  } finally {
    await s.close();
  }
}

async function tokenFor(kp: KeyPair, mode: 'hybrid' | 'pq' = 'hybrid'): Promise<string> {
  const now = Date.now();
  const req = {
    principalId: 'alice',
    principalKind: 'agent' as const,
    action: 'fs.read',
    args: { path: '/a', n: 1 },
    evaluationId: 'e',
    audience: 'fs',
    issuedAt: now,
    expiresAt: now + 30_000,
  };
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

  it('--expires 1.5ms rounds to a 2 ms expiry (no crash)', async () => {
    capture();
    const d = join(dir, 'k15');
    expect(await keygen(['--out', d, '--expires', '1.5ms'])).toBe(0);
    const pub = JSON.parse(await readFile(join(d, 'public.json'), 'utf8')) as { created: number; expires: number };
    expect(pub.expires - pub.created).toBe(2);
  });

  // `--expires` with no value (or before another flag) wrote a key that never expires, exit 0.
  it.each([[['--expires']], [['--expires', '--force']], [['--expire', '90d']]])(
    'refuses %j rather than write a key without expiry',
    async (extra) => {
      capture();
      const d = join(dir, `k-${extra.join('')}`);
      expect(await keygen(['--out', d, ...extra])).toBe(2);
      await expect(readFile(join(d, 'secret.key'))).rejects.toThrow();
    },
  );
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
    expect(
      await permit([
        'verify',
        token,
        '--keys',
        join(keys, 'public.json'),
        '--audience',
        'fs',
        '--action',
        'fs.read',
        '--args',
        '{"n":1,"path":"/a"}',
      ]),
    ).toBe(0);
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
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['bin/kavach.js', 'permit', 'verify', token, '--keys', join(keys, 'public.json'), '--mode', 'pq'],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(stdout)).toMatchObject({ kid: kp.kid, act: 'fs.read' });
  });

  it('checks --principal and --session', async () => {
    const token = await issueNow(kp, 'hybrid', { sessionId: 's-1' });
    const pub = join(keys, 'public.json');
    capture();
    expect(await permit(['verify', token, '--keys', pub, '--principal', 'alice', '--session', 's-1'])).toBe(0);
    expect(await permit(['verify', token, '--keys', pub, '--principal', 'bob'])).toBe(1);
    expect(await permit(['verify', token, '--keys', pub, '--session', 's-2'])).toBe(1);
    expect(out.slice(1).map((s) => s.trim())).toEqual(['WRONG_PRINCIPAL', 'WRONG_SESSION']);
  });
});

describe('kavach permit verify --root: the manifest has its own signature mode', () => {
  const kp = KeyPair.generate();
  // The permit's --mode was also used to check the key manifest, so a (default, hybrid) manifest
  // could not vouch for PQ-only permits, and a PQ-only manifest not for hybrid ones.
  let root: KeyPair;
  let rootPath: string;
  beforeAll(async () => {
    root = KeyPair.generate();
    rootPath = join(dir, 'root.json');
    await writeFile(rootPath, JSON.stringify(root.publicKeys()));
  });
  async function manifest(name: string, mode: SignatureMode): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, buildSignedManifest([kp.publicKeys()], root, { version: 1, mode }));
    return path;
  }

  it('a hybrid manifest vouches for a PQ-only permit (--mode pq)', async () => {
    const m = await manifest('hybrid-manifest.json', 'hybrid');
    const token = await issueNow(kp, 'pq');
    capture();
    expect(await permit(['verify', token, '--keys', m, '--root', rootPath, '--mode', 'pq'])).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ kid: kp.kid, sub: 'alice' });
  });

  it('a PQ-only manifest (--root-mode pq) vouches for a hybrid permit', async () => {
    const m = await manifest('pq-manifest.json', 'pq');
    const token = await issueNow(kp, 'hybrid');
    capture();
    expect(await permit(['verify', token, '--keys', m, '--root', rootPath, '--root-mode', 'pq'])).toBe(0);
  });

  it('a PQ-only manifest is refused where a hybrid one is expected (no downgrade by the file)', async () => {
    const m = await manifest('pq-manifest-2.json', 'pq');
    const token = await issueNow(kp, 'pq');
    capture();
    expect(await permit(['verify', token, '--keys', m, '--root', rootPath, '--mode', 'pq'])).toBe(1);
    expect(out.join('').trim()).toBe('ALG_MISMATCH');
  });

  it('says on stderr that the manifest, not the permit, was refused', async () => {
    const m = await manifest('pq-manifest-3.json', 'pq');
    const token = await issueNow(kp, 'pq');
    capture();
    const err: string[] = [];
    vi.mocked(process.stderr.write).mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
    expect(await permit(['verify', token, '--keys', m, '--root', rootPath, '--mode', 'pq'])).toBe(1);
    expect(err.join('')).toContain(`key manifest ${m}: [ALG_MISMATCH]`);
  });
});

describe('kavach permit verify refuses flags it cannot honour', () => {
  const kp = KeyPair.generate();
  // `--audience` with no value, or a misspelt `--audiance fs`, was ignored: the permit verified
  // with no audience check and exit 0.
  it.each([[['--audience']], [['--audience', '--action', 'fs.read']], [['--audiance', 'db']], [['--root-mode', 'pq']]])(
    'exits 2 for %j',
    async (extra) => {
      const keys = join(dir, 'flags-keys.json');
      await writeFile(keys, JSON.stringify(kp.publicKeys()));
      const token = await issueNow(kp, 'hybrid');
      capture();
      expect(await permit(['verify', token, '--keys', keys, ...extra])).toBe(2);
      expect(out).toEqual([]);
    },
  );
});
