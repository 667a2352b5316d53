// path_within { follow_links = true }: a link inside a root that points out of it (or into an
// excluded subtree) must not let a read or a write through. Real files and links in a temp dir.
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realPathOf } from '../../src/engine/conditions/real-path.ts';
import { Gate } from '../../src/engine/index.ts';
import { allowing, ctx, guarded, outcome } from './helpers.ts';

let base: string;
let root: string;
let outside: string;
const call = (path: unknown) => ctx({ principalId: 'bot', actionName: 'fs.write_file', params: { path } });

beforeAll(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'kavach-links-')));
  root = join(base, 'w');
  outside = join(base, 'outside');
  mkdirSync(join(root, '.git'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'secret');
  writeFileSync(join(root, 'ok.txt'), 'ok');
  writeFileSync(join(root, '.git', 'config'), '[core]');
  symlinkSync(outside, join(root, 'link')); // a directory link leaving the root
  symlinkSync(join(outside, 'planted.txt'), join(root, 'dangling')); // writing through it creates outside/planted.txt
  symlinkSync(join(root, '.git'), join(root, 'gitlink')); // into an excluded subtree
  symlinkSync(join(root, 'loop'), join(root, 'loop'));
  symlinkSync(join(root, 'sub'), join(root, 'inner')); // a link that stays inside (to a directory made below)
  mkdirSync(join(root, 'sub'));
  symlinkSync(root, join(base, 'rootlink')); // a root that is itself a link (macOS /tmp)
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const within = (extra: Record<string, unknown> = {}) => [
  { path_within: { field: 'path', roots: [root], exclude: ['*/.git/*'], ...extra } },
];

describe('path_within judges strings unless follow_links is set', () => {
  it('without follow_links a link leaving the root passes (the finding)', async () => {
    expect(await outcome(allowing(within()), call(join(root, 'link', 'secret.txt')))).toBe('permit');
  });

  it('with follow_links the real path must pass too: links out, dangling links and links into excludes are refused', async () => {
    const gate = allowing(within({ follow_links: true }));
    for (const path of [
      join(root, 'link', 'secret.txt'),
      join(root, 'link', 'new-file.txt'),
      join(root, 'link', 'new-dir', 'deeper', 'x'),
      join(root, 'dangling'),
      join(root, 'gitlink', 'config'),
      join(root, 'gitlink'),
      join(root, 'loop'),
      join(root, 'ok.txt', 'not-a-dir'),
    ]) {
      expect(await outcome(gate, call(path)), path).toBe('NO_POLICY_MATCH');
    }
  });

  it('with follow_links ordinary files, new files and links that stay inside still pass', async () => {
    const gate = allowing(within({ follow_links: true }));
    for (const path of [root, join(root, 'ok.txt'), join(root, 'new', 'deep', 'file.txt'), join(root, 'inner', 'x.txt')]) {
      expect(await outcome(gate, call(path)), path).toBe('permit');
    }
    expect(await outcome(gate, call(join(root, 'link')))).toBe('NO_POLICY_MATCH'); // the link itself resolves outside
  });

  it('a root that is itself a link holds its real paths', async () => {
    const gate = allowing([{ path_within: { field: 'path', roots: [join(base, 'rootlink')], follow_links: true } }]);
    expect(await outcome(gate, call(join(base, 'rootlink', 'ok.txt')))).toBe('permit');
    expect(await outcome(gate, call(join(base, 'rootlink', 'link', 'secret.txt')))).toBe('NO_POLICY_MATCH');
  });

  it('in a refuse policy a link into the refused tree matches, and an unresolvable path matches too (fail closed)', async () => {
    const deny = guarded([{ path_within: { field: 'path', roots: [outside], follow_links: true } }]);
    expect(await outcome(deny, call(join(root, 'link', 'secret.txt')))).toBe('POLICY_DENIED');
    expect(await outcome(deny, call(join(root, 'dangling')))).toBe('POLICY_DENIED');
    expect(await outcome(deny, call(join(root, 'loop')))).toBe('POLICY_DENIED');
    expect(await outcome(deny, call(join(root, 'ok.txt')))).toBe('permit');
    const lenient = guarded([{ path_within: { field: 'path', roots: [outside] } }]);
    expect(await outcome(lenient, call(join(root, 'link', 'secret.txt')))).toBe('permit');
  });

  it('in an approve policy a link into the guarded tree still asks a human (no way past it to a permit beside)', async () => {
    const gate = Gate.fromDict(
      {
        policies: [
          { name: 'anything_in_root', effect: 'permit', conditions: [{ path_within: { field: 'path', roots: [root] } }] },
          {
            name: 'outside_needs_a_human',
            effect: 'approve',
            conditions: [{ path_within: { field: 'path', roots: [outside], follow_links: true } }],
          },
        ],
      },
      { drift: false },
    );
    expect(await outcome(gate, call(join(root, 'link', 'secret.txt')))).toBe('APPROVAL_REQUIRED');
    expect(await outcome(gate, call(join(root, 'ok.txt')))).toBe('permit');
  });

  it('every item of a list is resolved', async () => {
    const gate = allowing([{ path_within: { field: 'paths', roots: [root], follow_links: true } }]);
    const list = (paths: string[]) => ctx({ principalId: 'bot', actionName: 'fs.read_multiple_files', params: { paths } });
    expect(await outcome(gate, list([join(root, 'ok.txt'), join(root, 'sub')]))).toBe('permit');
    expect(await outcome(gate, list([join(root, 'ok.txt'), join(root, 'link', 'secret.txt')]))).toBe('NO_POLICY_MATCH');
  });
});

describe('realPathOf', () => {
  it('resolves the longest existing prefix and keeps the missing rest', () => {
    expect(realPathOf(join(root, 'link', 'a', 'b'))).toBe(join(outside, 'a', 'b'));
    expect(realPathOf(join(root, 'ok.txt'))).toBe(join(root, 'ok.txt'));
    expect(realPathOf(join(root, 'dangling'))).toBeUndefined();
    expect(realPathOf(join(root, 'loop', 'x'))).toBeUndefined();
  });
});
