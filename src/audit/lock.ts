import { type FileHandle, open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { AuditError } from './errors.ts';
import { lockPath } from './files.ts';

interface LockInfo {
  pid: number;
  host: string;
  since: number;
}

/** A lock file younger than this with no content may be mid-creation by another process. */
const CREATING_GRACE_MS = 5_000;

/**
 * One writer per log: PATH.lock, created exclusively, holds the writer's pid and host. A lock left
 * by a process that is gone (same host, pid not alive) is taken over; anything else is refused
 * with the holder named.
 */
export class LogLock {
  private constructor(
    readonly path: string,
    private readonly info: LockInfo,
  ) {}

  static async acquire(logPath: string): Promise<LogLock> {
    const path = lockPath(logPath);
    const info: LockInfo = { pid: process.pid, host: hostname(), since: Date.now() };
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const fh = await open(path, 'wx', 0o644);
        try {
          await fh.writeFile(`${JSON.stringify(info)}\n`);
          await fh.sync();
        } finally {
          await fh.close();
        }
        return new LogLock(path, info);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await readHolder(path);
      if (holder === 'gone') continue;
      if (typeof holder === 'object' && 'stale' in holder) {
        await takeOver(path, holder.stale);
        continue;
      }
      const who =
        holder === 'creating'
          ? 'another process (lock being created)'
          : `pid ${holder.pid} on ${holder.host}${holder.pid === process.pid && holder.host === info.host ? ' (this process)' : ''}`;
      throw new AuditError(
        'LOCKED',
        -1,
        `audit log ${logPath} is already open for writing by ${who}; one writer per log (lock file ${path}: remove it only if that process is gone)`,
      );
    }
    throw new AuditError('LOCKED', -1, `audit log ${logPath}: could not take the lock ${path} (contended)`);
  }

  /** Removes the lock if it is still ours. */
  async release(): Promise<void> {
    try {
      const current = JSON.parse(await readFile(this.path, 'utf8')) as Partial<LockInfo>;
      if (current.pid !== this.info.pid || current.host !== this.info.host || current.since !== this.info.since) return;
      await unlink(this.path);
    } catch {
      // Already gone or unreadable: not ours to remove.
    }
  }
}

async function readHolder(path: string): Promise<LockInfo | { stale: string } | 'gone' | 'creating'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  let info: Partial<LockInfo> | undefined;
  try {
    info = JSON.parse(text) as Partial<LockInfo>;
  } catch {
    info = undefined;
  }
  if (!info || !Number.isSafeInteger(info.pid) || typeof info.host !== 'string') {
    // Empty or torn: a writer died while creating it, or is creating it right now.
    const age =
      Date.now() -
      (await stat(path).then(
        (s) => s.mtimeMs,
        () => 0,
      ));
    return age < CREATING_GRACE_MS ? 'creating' : { stale: text };
  }
  const holder = info as LockInfo;
  if (holder.host === hostname() && !alive(holder.pid)) return { stale: text };
  return holder;
}

/**
 * Removes a stale lock, one process at a time: two openers that both judged the same lock stale
 * must not both remove it (the second would remove the first one's fresh lock). The remover holds
 * PATH.takeover and removes the lock only if it still has the content judged stale.
 */
async function takeOver(path: string, staleText: string): Promise<void> {
  const guard = `${path}.takeover`;
  let fh: FileHandle;
  try {
    fh = await open(guard, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another opener is taking over; a guard left by a crash mid-takeover expires.
    const age =
      Date.now() -
      (await stat(guard).then(
        (s) => s.mtimeMs,
        () => Date.now(),
      ));
    if (age > CREATING_GRACE_MS) await unlink(guard).catch(() => undefined);
    else await new Promise((resolve) => setTimeout(resolve, 20));
    return;
  }
  try {
    const now = await readFile(path, 'utf8').catch(() => undefined);
    if (now === staleText) await unlink(path);
  } finally {
    await fh.close();
    await unlink(guard).catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
