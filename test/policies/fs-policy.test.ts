import { describe, expect, it } from 'vitest';
import { Gate, type ActionContext } from '../../src/index.ts';

// policies/fs.toml guards @modelcontextprotocol/server-filesystem behind `kavach mcp` (server "fs").
const gate = await Gate.fromFile('policies/fs.toml', { drift: false });
const call = (actionName: string, params: Record<string, unknown>): ActionContext => ({
  principalId: 'alice-laptop',
  principalKind: 'agent',
  actionName,
  params,
});
const kind = async (actionName: string, params: Record<string, unknown>) => (await gate.evaluate(call(actionName, params))).kind;

describe('policies/fs.toml', () => {
  it('permits reads, lists and writes inside the root', async () => {
    expect(await kind('fs.read_text_file', { path: '/home/alice/work/notes.md' })).toBe('permit');
    expect(await kind('fs.list_directory', { path: '/home/alice/work' })).toBe('permit');
    expect(await kind('fs.write_file', { path: '/home/alice/work/out.txt', content: 'x' })).toBe('permit');
    expect(await kind('fs.read_multiple_files', { paths: ['/home/alice/work/a', '/home/alice/work/b'] })).toBe('permit');
    expect(await kind('fs.move_file', { source: '/home/alice/work/a', destination: '/home/alice/work/b' })).toBe('permit');
  });

  it('refuses traversal and paths outside the root, in every path argument', async () => {
    expect(await kind('fs.read_text_file', { path: '/home/alice/work/../.ssh/id_ed25519' })).toBe('refuse');
    expect(await kind('fs.read_text_file', { path: '/home/alice/workshop/x' })).toBe('refuse');
    expect(await kind('fs.read_multiple_files', { paths: ['/home/alice/work/a', '/etc/passwd'] })).toBe('refuse');
    expect(await kind('fs.move_file', { source: '/home/alice/work/a', destination: '/tmp/a' })).toBe('refuse');
  });

  it('keeps secrets out even inside the root: single paths, lists and both ends of a move', async () => {
    expect(await kind('fs.read_text_file', { path: '/home/alice/work/.env' })).toBe('refuse');
    expect(await kind('fs.read_text_file', { path: '/home/alice/work/app/.env.production' })).toBe('refuse');
    expect(await kind('fs.read_multiple_files', { paths: ['/home/alice/work/a', '/home/alice/work/.env'] })).toBe('refuse');
    expect(await kind('fs.read_multiple_files', { paths: ['/home/alice/work/certs/server.pem'] })).toBe('refuse');
    expect(await kind('fs.move_file', { source: '/home/alice/work/.ssh/id_rsa', destination: '/home/alice/work/x' })).toBe('refuse');
    expect(await kind('fs.write_file', { path: '/home/alice/work/.git/hooks/pre-commit', content: 'curl evil' })).toBe('refuse');
  });

  it('keeps .git itself out: no rename away and back, no list, no move onto it (DESIGN §5 subtrees)', async () => {
    expect(await kind('fs.move_file', { source: '/home/alice/work/.git', destination: '/home/alice/work/gitdir' })).toBe('refuse');
    expect(await kind('fs.move_file', { source: '/home/alice/work/gitdir', destination: '/home/alice/work/.git' })).toBe('refuse');
    expect(await kind('fs.move_file', { source: '/home/alice/work/app/.git', destination: '/home/alice/work/app/g' })).toBe('refuse');
    expect(await kind('fs.list_directory', { path: '/home/alice/work/.git' })).toBe('refuse');
    expect(await kind('fs.create_directory', { path: '/home/alice/work/.ssh' })).toBe('refuse');
    expect(await kind('fs.read_multiple_files', { paths: ['/home/alice/work/a', '/home/alice/work/.git'] })).toBe('refuse');
  });

  it('judges both ends of a move for every secret', async () => {
    expect(await kind('fs.move_file', { source: '/home/alice/work/.env.local', destination: '/home/alice/work/env.txt' })).toBe('refuse');
    expect(await kind('fs.move_file', { source: '/home/alice/work/.git/config', destination: '/home/alice/work/c' })).toBe('refuse');
    expect(await kind('fs.move_file', { source: '/home/alice/work/notes.md', destination: '/home/alice/work/server.pem' })).toBe('refuse');
    expect(await kind('fs.move_file', { source: '/home/alice/work/id.key', destination: '/home/alice/work/x' })).toBe('refuse');
  });

  it('refuses tools it does not list', async () => {
    expect(await kind('fs.delete_everything', { path: '/home/alice/work/a' })).toBe('refuse');
  });
});

describe('policies/fs-approvals.toml', () => {
  it('keeps env files (.env.local too), keys and .git itself out of reads, and never asks a person about them', async () => {
    const approvals = await Gate.fromFile('policies/fs-approvals.toml', { drift: false });
    const verdict = async (actionName: string, path: string) => {
      const v = await approvals.evaluate(call(actionName, { path, content: 'x' }));
      return v.kind === 'refuse' ? v.code : v.kind;
    };
    expect(await verdict('fs.read_text_file', '/home/alice/work/notes.md')).toBe('permit');
    expect(await verdict('fs.write_file', '/home/alice/work/notes.md')).toBe('APPROVAL_REQUIRED');
    expect(await verdict('fs.write_file', '/home/alice/work/scratch/a.txt')).toBe('permit');
    for (const path of [
      '/home/alice/work/.env.local',
      '/home/alice/work/.git',
      '/home/alice/work/.git/config',
      '/home/alice/work/scratch/.git/hooks/pre-commit',
      '/home/alice/work/.ssh',
    ]) {
      expect(await verdict('fs.read_text_file', path), path).toBe('POLICY_DENIED');
      expect(await verdict('fs.write_file', path), path).toBe('POLICY_DENIED');
    }
  });
});
