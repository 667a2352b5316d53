// The shipped policies/fs.toml, unchanged but for its root, in front of the real
// @modelcontextprotocol/server-filesystem: the .git rename attack, secrets at either end of a
// move, and links in the root that lead into .git or out of the root.
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILESYSTEM, REPO, cleanup, q, startProxy, tempDir, textOf, write, type RunningProxy } from './proxy-harness.ts';

let dir: string;
let root: string;
let proxy: RunningProxy;

beforeAll(async () => {
  dir = realpathSync(tempDir('kavach-shipped-fs-'));
  root = join(dir, 'work');
  const outside = join(dir, 'outside');
  mkdirSync(join(root, '.git'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, '.git', 'config'), '[core]\n\trepositoryformatversion = 0\n');
  writeFileSync(join(root, '.env.local'), 'API_KEY=live\n');
  writeFileSync(join(root, 'notes.md'), 'notes\n');
  writeFileSync(join(outside, 'secret.txt'), 'outside the root\n');
  symlinkSync(join(root, '.git'), join(root, 'gitlink')); // as a cloned repository could carry
  symlinkSync(outside, join(root, 'outlink'));
  const shipped = readFileSync(join(REPO, 'policies', 'fs.toml'), 'utf8');
  expect(shipped).toContain('"/home/alice/work"');
  write(join(dir, 'fs.toml'), shipped.replaceAll('"/home/alice/work"', q(root)));
  write(
    join(dir, 'kavach.toml'),
    `
[gate]
policy = "fs.toml"

[identity]
principal_id = "alice-laptop"
principal_kind = "agent"

[servers.fs]
command = ${q(process.execPath)}
args = [${q(FILESYSTEM)}, ${q(root)}]
`,
  );
  proxy = await startProxy(join(dir, 'kavach.toml'));
});

afterAll(async () => {
  await proxy?.close();
  cleanup(dir);
});

const call = (name: string, args: Record<string, unknown>) => proxy.client.callTool({ name: `fs__${name}`, arguments: args });
const refused = async (name: string, args: Record<string, unknown>) => {
  const result = await call(name, args);
  expect(result.isError, JSON.stringify(args)).toBe(true);
  expect(textOf(result)).toMatch(/^Refused by policy \[(POLICY_DENIED|NO_POLICY_MATCH)\]/);
};

describe('policies/fs.toml in front of server-filesystem', () => {
  it('permits ordinary reads and moves inside the root', async () => {
    const read = await call('read_text_file', { path: join(root, 'notes.md') });
    expect(read.isError).toBeFalsy();
    expect(textOf(read)).toContain('notes');
  });

  it('refuses moving .git away (to edit its config and move it back), and moving anything onto .git', async () => {
    await refused('move_file', { source: join(root, '.git'), destination: join(root, 'gitdir') });
    expect(existsSync(join(root, '.git', 'config'))).toBe(true);
    expect(existsSync(join(root, 'gitdir'))).toBe(false);
    await refused('move_file', { source: join(root, 'notes.md'), destination: join(root, '.git') });
    await refused('list_directory', { path: join(root, '.git') });
    await refused('write_file', { path: join(root, '.git', 'config'), content: '[core]\n\tfsmonitor = evil\n' });
    expect(readFileSync(join(root, '.git', 'config'), 'utf8')).not.toContain('fsmonitor');
  });

  it('judges both ends of a move: no secret as the source, no key name as the destination', async () => {
    await refused('move_file', { source: join(root, '.env.local'), destination: join(root, 'env.txt') });
    await refused('move_file', { source: join(root, '.git', 'config'), destination: join(root, 'config.txt') });
    await refused('move_file', { source: join(root, 'notes.md'), destination: join(root, 'server.pem') });
    expect(existsSync(join(root, '.env.local'))).toBe(true);
    expect(existsSync(join(root, 'notes.md'))).toBe(true);
  });

  it('follows links: one into .git and one out of the root let nothing through', async () => {
    await refused('read_text_file', { path: join(root, 'gitlink', 'config') });
    await refused('write_file', { path: join(root, 'gitlink', 'config'), content: 'x' });
    await refused('read_text_file', { path: join(root, 'outlink', 'secret.txt') });
    await refused('read_multiple_files', { paths: [join(root, 'notes.md'), join(root, 'gitlink', 'config')] });
  });

  it('a move the policy allows still happens (the gate is not simply closed)', async () => {
    const moved = await call('move_file', { source: join(root, 'notes.md'), destination: join(root, 'notes-2.md') });
    expect(moved.isError, textOf(moved)).toBeFalsy();
    expect(existsSync(join(root, 'notes-2.md'))).toBe(true);
  });
});
