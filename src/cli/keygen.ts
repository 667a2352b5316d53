/** `kavach keygen --out DIR [--passphrase-env VAR] [--expires 90d] [--force]` */
import { access, chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyPair } from '../crypto/keys.ts';
import { parseDuration } from '../engine/duration.ts';
import { runCommand, InputError, UsageError } from './args.ts';

const SPEC = {
  command: 'kavach keygen',
  usage: `usage: kavach keygen --out DIR [--passphrase-env VAR] [--expires DURATION] [--force]
  writes DIR/secret.key (mode 0600; encrypted when --passphrase-env names a set variable)
  and DIR/public.json (the public key bundle verifiers load)
`,
  // `--expires` with no value, or a misspelt `--expire 90d`, must not write a key that never expires.
  options: { out: 'string', 'passphrase-env': 'string', expires: 'string', force: 'boolean' },
} as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(SPEC, argv, async ({ options }) => {
    const out = options.out;
    if (out === undefined) throw new UsageError('--out DIR is required');
    let passphrase: string | undefined;
    const envName = options['passphrase-env'];
    if (envName !== undefined) {
      if (envName === '') throw new UsageError('--passphrase-env needs a variable name');
      passphrase = process.env[envName];
      if (!passphrase) throw new InputError(`environment variable ${envName} is not set or empty`);
    }
    let expiresInMs: number | undefined;
    if (options.expires !== undefined) {
      try {
        expiresInMs = parseDuration(options.expires);
      } catch (err) {
        throw new UsageError(`--expires: ${(err as Error).message}`);
      }
    }
    const secretPath = join(out, 'secret.key');
    const publicPath = join(out, 'public.json');
    if (options.force !== true && (await exists(secretPath))) {
      process.stderr.write(`kavach keygen: ${secretPath} exists; pass --force to replace it\n`);
      return 1;
    }
    await mkdir(out, { recursive: true, mode: 0o700 });
    const kp = KeyPair.generate(expiresInMs !== undefined ? { expiresInMs } : {});
    await kp.save(secretPath, passphrase !== undefined ? { passphrase } : {});
    await writeFile(publicPath, `${JSON.stringify(kp.publicKeys(), null, 2)}\n`, { mode: 0o644 });
    await chmod(publicPath, 0o644);
    process.stdout.write(
      `kid ${kp.kid}\nsecret ${secretPath} (0600${passphrase !== undefined ? ', encrypted' : ''})\npublic ${publicPath}\n`,
    );
    return 0;
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
