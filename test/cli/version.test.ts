import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { packageVersion } from '../../src/cli/version.ts';
import { tempDir } from './helpers.ts';

const REPO = join(import.meta.dirname, '../..');
const ours = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

describe('kavach --version', () => {
  it('reads the package.json two levels above the module, as in the published package (dist/cli/version.js)', () => {
    const root = tempDir();
    mkdirSync(join(root, 'dist/cli'), { recursive: true });
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'kavach', version: '9.8.7' }));
    expect(packageVersion(pathToFileURL(join(root, 'dist/cli/version.js')))).toBe('9.8.7');
  });

  it('names the running code, not the package of the current directory', async () => {
    const elsewhere = tempDir();
    writeFileSync(join(elsewhere, 'package.json'), JSON.stringify({ name: 'other', version: '0.0.1-other' }));
    const { stdout } = await promisify(execFile)(process.execPath, [join(REPO, 'bin/kavach.js'), '--version'], {
      cwd: elsewhere,
      encoding: 'utf8',
    });
    expect(stdout).toBe(`${ours}\n`);
  });
});
