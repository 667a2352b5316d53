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
import { parseArgs, stringFlag } from './args.ts';

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

/** Every flag takes a value; a flag without one, or an unknown (misspelt) one, would skip a check. */
const FLAGS = ['keys', 'root', 'root-mode', 'mode', 'audience', 'principal', 'session', 'action', 'args'];

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') {
    process.stderr.write(USAGE);
    return sub === '--help' || sub === 'help' ? 0 : 2;
  }
  const args = parseArgs(rest);
  if (args.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  for (const [name, value] of args.flags) {
    if (!FLAGS.includes(name) || value === true) {
      process.stderr.write(`kavach permit verify: ${FLAGS.includes(name) ? `--${name} needs a value` : `unknown flag --${name}`}\n${USAGE}`);
      return 2;
    }
  }
  const keysPath = stringFlag(args, 'keys');
  let token = args.positionals[0];
  const mode = stringFlag(args, 'mode') ?? 'hybrid';
  const rootPath = stringFlag(args, 'root');
  const rootMode = stringFlag(args, 'root-mode') ?? 'hybrid';
  if (!token || !keysPath || args.positionals.length > 1 || !isMode(mode) || !isMode(rootMode) || (args.flags.has('root-mode') && rootPath === undefined)) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (token === '-') token = (await readStdin()).trim();
  const expect: PermitExpectation = {};
  const action = stringFlag(args, 'action');
  if (action !== undefined) expect.action = action;
  const principal = stringFlag(args, 'principal');
  if (principal !== undefined) expect.principal = principal;
  const session = stringFlag(args, 'session');
  if (session !== undefined) expect.session = session;
  const argsJson = stringFlag(args, 'args');
  if (argsJson !== undefined) {
    try {
      expect.args = JSON.parse(argsJson);
    } catch (err) {
      process.stderr.write(`kavach permit verify: --args is not JSON: ${(err as Error).message}\n`);
      return 2;
    }
  }
  let keys: PublicKeyDirectory;
  try {
    // The manifest is signed by the root key in its own mode, not the permits' mode.
    keys = rootPath
      ? PublicKeyDirectory.fromSignedFile(keysPath, JSON.parse(await readFile(rootPath, 'utf8')) as PublicKeyBundle, { mode: rootMode })
      : PublicKeyDirectory.fromFile(keysPath);
  } catch (err) {
    // Same codes as a refused permit (ALG_MISMATCH, BAD_SIGNATURE...): say it was the keys.
    return fail(err, `${rootPath ? 'key manifest' : 'keys'} ${keysPath}: `);
  }
  try {
    const audience = stringFlag(args, 'audience');
    const verifier = new PermitVerifier({ keys, mode, ...(audience !== undefined ? { audience } : {}) });
    const claims = await verifier.verify(token, expect);
    process.stdout.write(`${JSON.stringify(claims, null, 2)}\n`);
    return 0;
  } catch (err) {
    return fail(err, '');
  }
}

/** A PermitError prints its code (exit 1); anything else is a usage or I/O problem (exit 2). */
function fail(err: unknown, what: string): number {
  if (err instanceof PermitError) {
    process.stdout.write(`${err.code}\n`);
    process.stderr.write(`kavach permit verify: ${what}${err.message}\n`);
    return 1;
  }
  process.stderr.write(`kavach permit verify: ${what}${(err as Error)?.message ?? String(err)}\n`);
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
