/**
 * `kavach audit verify --anchor X`: X is a witness (`redis://…`, `rediss://…`: the Redis the
 * proxy's `[audit] anchor` sent checkpoints to) or a file holding one checkpoint record kept
 * elsewhere (the older form, still read).
 */
import { readFile } from 'node:fs/promises';
import type { AuditAnchor } from '../audit/anchor.ts';
import { InputError } from './args.ts';

export type AnchorInput = { witness: AuditAnchor; describe: string } | { checkpoint: string; describe: string };

export const ANCHOR_URL = /^rediss?:\/\//;

export async function anchorInput(value: string): Promise<AnchorInput> {
  if (ANCHOR_URL.test(value)) {
    let redis: typeof import('../redis/audit-anchor.ts');
    try {
      redis = await import('../redis/audit-anchor.ts');
    } catch (err) {
      throw new InputError(
        `--anchor ${value}: a Redis anchor needs the optional ioredis package (npm install ioredis): ${(err as Error).message}`,
      );
    }
    let host: string;
    try {
      host = new URL(value).host;
    } catch {
      throw new InputError(`--anchor ${value}: not a valid redis:// URL`);
    }
    return { witness: new redis.RedisAuditAnchor(value), describe: `redis ${host}` };
  }
  try {
    return { checkpoint: await readFile(value, 'utf8'), describe: value };
  } catch (err) {
    throw new InputError(`--anchor ${value}: cannot read: ${(err as Error).message}`);
  }
}
