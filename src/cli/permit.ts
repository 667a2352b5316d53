/**
 * `kavach permit verify TOKEN --keys public.json [--root root.json] [--mode hybrid|pq]
 *    [--audience A] [--action X] [--args JSON]`
 * Prints the claims (JSON) and exits 0, or prints the error code and exits 1.
 */
import { readFile } from 'node:fs/promises';
import { PermitError } from '../crypto/errors.ts';
import { PublicKeyDirectory } from '../crypto/key-directory.ts';
import { PermitVerifier, type PermitExpectation } from '../crypto/permit-verifier.ts';
import type { PublicKeyBundle } from '../crypto/keys.ts';
import { parseArgs, stringFlag } from './args.ts';

const USAGE = `usage: kavach permit verify TOKEN|- --keys public.json [--root root.json] [--mode hybrid|pq]
                            [--audience A] [--action X] [--args JSON]
  --keys   a public key bundle, an array of them, or (with --root) a signed key manifest
  --mode   the signature mode to insist on (default hybrid)
  prints the claims and exits 0, or prints the error code (e.g. EXPIRED) and exits 1
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') {
    process.stderr.write(USAGE);
    return sub === '--help' || sub === 'help' ? 0 : 2;
  }
  const args = parseArgs(rest);
  const keysPath = stringFlag(args, 'keys');
  let token = args.positionals[0];
  const mode = stringFlag(args, 'mode') ?? 'hybrid';
  if (!token || !keysPath || args.positionals.length > 1 || (mode !== 'hybrid' && mode !== 'pq')) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (token === '-') token = (await readStdin()).trim();
  const expect: PermitExpectation = {};
  const action = stringFlag(args, 'action');
  if (action !== undefined) expect.action = action;
  const argsJson = stringFlag(args, 'args');
  if (argsJson !== undefined) {
    try {
      expect.args = JSON.parse(argsJson);
    } catch (err) {
      process.stderr.write(`kavach permit verify: --args is not JSON: ${(err as Error).message}\n`);
      return 2;
    }
  }
  try {
    const rootPath = stringFlag(args, 'root');
    const keys = rootPath
      ? PublicKeyDirectory.fromSignedFile(keysPath, JSON.parse(await readFile(rootPath, 'utf8')) as PublicKeyBundle, { mode })
      : PublicKeyDirectory.fromFile(keysPath);
    const audience = stringFlag(args, 'audience');
    const verifier = new PermitVerifier({ keys, mode, ...(audience !== undefined ? { audience } : {}) });
    const claims = await verifier.verify(token, expect);
    process.stdout.write(`${JSON.stringify(claims, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof PermitError) {
      process.stdout.write(`${err.code}\n`);
      process.stderr.write(`kavach permit verify: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`kavach permit verify: ${(err as Error)?.message ?? String(err)}\n`);
    return 2;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}
