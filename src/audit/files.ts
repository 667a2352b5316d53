import { lstat, open, readdir, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * The files of one log at PATH: PATH is the active segment; rotated segments are PATH.000001,
 * PATH.000002, ... (oldest first); PATH.seal holds the latest checkpoint; PATH.lock the writer.
 */
export function segmentPath(path: string, n: number): string {
  return `${path}.${String(n).padStart(6, '0')}`;
}

export const sealPath = (path: string): string => `${path}.seal`;
export const lockPath = (path: string): string => `${path}.lock`;

/**
 * The one name a log is known by: symlinks (to the file or its directory) resolved. The lock, the
 * seal and the segments are named after it, so two openers that spell the path differently still
 * meet at one lock, and a verifier given a symlink still finds the seal and the segments.
 */
export async function resolveLogPath(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const link = await lstat(path).then(
    (s) => s.isSymbolicLink(),
    () => false,
  );
  if (link) throw new Error(`${path} is a symlink to a file that does not exist`);
  const dir = await realpath(dirname(path)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return dirname(path);
    throw err;
  });
  return join(dir, basename(path));
}

/** Rotated segments of the log, oldest first. */
export async function listSegments(path: string): Promise<{ n: number; path: string }[]> {
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: { n: number; path: string }[] = [];
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const suffix = name.slice(base.length + 1);
    if (/^\d{6,}$/.test(suffix)) out.push({ n: Number(suffix), path: segmentPath(path, Number(suffix)) });
  }
  return out.sort((a, b) => a.n - b.n);
}

/** Makes a rename or a new file durable: fsync the directory that holds it. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces a small file atomically and durably (write temp, fsync, rename, fsync dir). */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dirname(path));
}
