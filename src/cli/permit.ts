/**
 * `kavach permit verify TOKEN --keys public.json [--root root.json [--root-mode hybrid|pq]]
 *    [--mode hybrid|pq] [--audience A] [--principal P] [--session S] [--action X] [--args JSON]`
 * Prints the claims (JSON) and exits 0, or prints the error code and exits 1.
 */
import { readFile } from 'node:fs/promises';
import { PermitError } from '../crypto/errors.ts';
import { PublicKeyDirectory } from '../crypto/key-directory.ts';
import { PermitVerifier, type PermitExpectation } from '../crypto/permit-verifier.ts';
import type { PublicKeyBundle } from '../crypto/keys.ts';
import { dispatch, InputError, ioError, runCommand, UsageError } from './args.ts';
import { terminalJson, visibleLines } from '../engine/terminal-text.ts';

const USAGE = `usage: kavach permit verify TOKEN|- --keys public.json [--root root.json [--root-mode hybrid|pq]]
                            [--mode hybrid|pq] [--audience A] [--principal P] [--session S]
                            [--action X] [--args JSON]
  --keys       a public key bundle, an array of them, or (with --root) a signed key manifest
  --mode       the signature mode to insist on for the permit (default hybrid)
  --root-mode  the signature mode to insist on for the key manifest (default hybrid, as
               buildSignedManifest signs); independent of --mode
  --principal, --session  the permit's sub / sid must equal them
  prints the claims and exits 0, or prints the error code (e.g. EXPIRED) and exits 1
`;

const SPEC = {
  command: 'kavach permit verify',
  usage: USAGE,
  // Every option takes a value; one without it, or a misspelt one, would skip a check.
  options: {
    keys: 'string',
    root: 'string',
    'root-mode': 'string',
    mode: 'string',
    audience: 'string',
    principal: 'string',
    session: 'string',
    action: 'string',
    args: 'string',
  },
  positionals: { name: 'TOKEN (or - to read it from stdin)', min: 1, max: 1 },
} as const;

export function run(argv: string[]): Promise<number> {
  return dispatch('kavach permit', USAGE, { verify }, argv);
}

function verify(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, async ({ options, positionals }) => {
    const keysPath = options.keys;
    if (keysPath === undefined) throw new UsageError('--keys public.json is required');
    const mode = options.mode ?? 'hybrid';
    const rootPath = options.root;
    const rootMode = options['root-mode'] ?? 'hybrid';
    if (!isMode(mode)) throw new UsageError('--mode is hybrid or pq');
    if (!isMode(rootMode)) throw new UsageError('--root-mode is hybrid or pq');
    if (options['root-mode'] !== undefined && rootPath === undefined) throw new UsageError('--root-mode needs --root');
    let token = positionals[0] as string;
    if (token === '-') token = (await readStdin()).trim();
    const expect: PermitExpectation = {};
    if (options.action !== undefined) expect.action = options.action;
    if (options.principal !== undefined) expect.principal = options.principal;
    if (options.session !== undefined) expect.session = options.session;
    if (options.args !== undefined) {
      try {
        expect.args = JSON.parse(options.args);
      } catch (err) {
        throw new UsageError(`--args is not JSON: ${(err as Error).message}`);
      }
    }
    let keys: PublicKeyDirectory;
    try {
      // The manifest is signed by the root key in its own mode, not the permits' mode.
      keys = rootPath
        ? PublicKeyDirectory.fromSignedFile(keysPath, await readRoot(rootPath), { mode: rootMode })
        : PublicKeyDirectory.fromFile(keysPath);
    } catch (err) {
      // Same codes as a refused permit (ALG_MISMATCH, BAD_SIGNATURE...): say it was the keys.
      return fail(err, `${rootPath ? 'key manifest' : 'keys'} ${keysPath}: `);
    }
    try {
      const audience = options.audience;
      const verifier = new PermitVerifier({ keys, mode, ...(audience !== undefined ? { audience } : {}) });
      const claims = await verifier.verify(token, expect);
      process.stdout.write(`${terminalJson(claims, 2)}\n`);
      return 0;
    } catch (err) {
      return fail(err, '');
    }
  });
}

async function readRoot(path: string): Promise<PublicKeyBundle> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text) as PublicKeyBundle;
  } catch (err) {
    throw new InputError(`--root ${path}: not JSON: ${(err as Error).message}`);
  }
}

/**
 * A PermitError prints its code (exit 1); a file that cannot be read, or anything else, is a
 * usage or I/O problem: one line and exit 2.
 */
function fail(err: unknown, what: string): number {
  if (err instanceof PermitError && ioError(err) === undefined) {
    process.stdout.write(`${err.code}\n`);
    process.stderr.write(`kavach permit verify: ${what}${err.message}\n`);
    return 1;
  }
  process.stderr.write(`${visibleLines(`kavach permit verify: ${what}${(err as Error).message}`)}\n`);
  return 2;
}

function isMode(value: string): value is 'hybrid' | 'pq' {
  return value === 'hybrid' || value === 'pq';
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}
