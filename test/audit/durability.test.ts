import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { tempDir, openLog, verdict } from './helpers.ts';

// Which directories the log fsyncs: a file (or directory) just created survives a power loss only
// once its entry is synced in the directory that holds it.
const synced = vi.hoisted(() => [] as string[]);
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const open: typeof fs.open = async (...args) => {
    const fh = await fs.open(...args);
    if (args[1] === 'r') {
      const sync = fh.sync.bind(fh);
      fh.sync = async () => {
        synced.push(String(args[0]));
        return sync();
      };
    }
    return fh;
  };
  return { ...fs, default: { ...fs, open }, open };
});

const dir = tempDir();

describe('durability of a new log', () => {
  it('syncs the directory of the new file and every directory it had to create', async () => {
    const path = join(dir, 'made', 'deeper', 'audit.jsonl');
    const log = await openLog(path);
    await log.append(verdict());
    expect(synced).toEqual(expect.arrayContaining([join(dir, 'made', 'deeper'), join(dir, 'made'), dir]));
    await log.close();
  });
});
