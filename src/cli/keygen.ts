/** `kavach keygen --out DIR [--passphrase-env VAR] [--expires 90d] [--force]` */
import { access, chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyPair } from '../crypto/keys.ts';
import { parseDuration } from '../engine/duration.ts';
import { parseArgs, stringFlag } from './args.ts';

const USAGE = `usage: kavach keygen --out DIR [--passphrase-env VAR] [--expires DURATION] [--force]
  writes DIR/secret.key (mode 0600; encrypted when --passphrase-env names a set variable)
  and DIR/public.json (the public key bundle verifiers load)
`;

const VALUE_FLAGS = ['out', 'passphrase-env', 'expires'];
const BOOLEAN_FLAGS = ['force', 'help'];

function flagProblem(name: string, value: string | true): string | undefined {
  if (VALUE_FLAGS.includes(name)) return value === true ? `--${name} needs a value` : undefined;
  if (BOOLEAN_FLAGS.includes(name)) return value === true ? undefined : `--${name} takes no value`;
  return `unknown flag --${name}`;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, BOOLEAN_FLAGS);
  // `--expires` with no value, or a misspelt `--expire 90d`, must not write a key that never expires.
  for (const [name, value] of args.flags) {
    const problem = flagProblem(name, value);
    if (problem) {
      process.stderr.write(`kavach keygen: ${problem}\n${USAGE}`);
      return 2;
    }
  }
  const out = stringFlag(args, 'out');
  if (args.flags.has('help') || !out || args.positionals.length > 0) {
    process.stderr.write(USAGE);
    return args.flags.has('help') ? 0 : 2;
  }
  let passphrase: string | undefined;
  const envName = stringFlag(args, 'passphrase-env');
  if (args.flags.has('passphrase-env')) {
    if (!envName) {
      process.stderr.write('kavach keygen: --passphrase-env needs a variable name\n');
      return 2;
    }
    passphrase = process.env[envName];
    if (!passphrase) {
      process.stderr.write(`kavach keygen: environment variable ${envName} is not set or empty\n`);
      return 2;
    }
  }
  let expiresInMs: number | undefined;
  const expires = stringFlag(args, 'expires');
  if (expires !== undefined) {
    try {
      expiresInMs = parseDuration(expires);
    } catch (err) {
      process.stderr.write(`kavach keygen: --expires: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const secretPath = join(out, 'secret.key');
  const publicPath = join(out, 'public.json');
  if (!args.flags.has('force') && (await exists(secretPath))) {
    process.stderr.write(`kavach keygen: ${secretPath} exists; pass --force to replace it\n`);
    return 1;
  }
  await mkdir(out, { recursive: true, mode: 0o700 });
  const kp = KeyPair.generate(expiresInMs !== undefined ? { expiresInMs } : {});
  await kp.save(secretPath, passphrase !== undefined ? { passphrase } : {});
  await writeFile(publicPath, `${JSON.stringify(kp.publicKeys(), null, 2)}\n`, { mode: 0o644 });
  await chmod(publicPath, 0o644);
  process.stdout.write(`kid ${kp.kid}\nsecret ${secretPath} (0600${passphrase !== undefined ? ', encrypted' : ''})\npublic ${publicPath}\n`);
  return 0;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
