// path_within excludes name subtrees (DESIGN §5): the directory a pattern names, everything below
// it, and no way around it by renaming a directory above what it excludes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileExcludedSubtrees, compileExcludes } from '../../src/engine/conditions/exclude.ts';
import { compileGlob } from '../../src/engine/glob.ts';
import { allowing, ctx, outcome } from './helpers.ts';

const ROOT = '/w';
const call = (params: Record<string, unknown>) => ctx({ principalId: 'bot', actionName: 'fs.move_file', params });
const movesIn = (exclude: string[]) =>
  allowing([
    { path_within: { field: 'source', roots: [ROOT], exclude } },
    { path_within: { field: 'destination', roots: [ROOT], exclude } },
  ]);

describe('path_within exclude: a pattern covers the directory it names and everything below it', () => {
  it.each([['*/.git/*'], ['*/.git']])('%j refuses moving .git itself away and back (the core.fsmonitor attack)', async (pattern) => {
    const gate = movesIn([pattern]);
    expect(await outcome(gate, call({ source: '/w/.git', destination: '/w/gitdir' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, call({ source: '/w/gitdir', destination: '/w/.git' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, call({ source: '/w/a/.git/config', destination: '/w/config' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, call({ source: '/w/a.git', destination: '/w/b.gitx' }))).toBe('permit');
  });

  it('a file pattern covers a directory of that name too', async () => {
    const gate = movesIn(['*.pem', '*/.env']);
    expect(await outcome(gate, call({ source: '/w/certs.pem/key', destination: '/w/k' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, call({ source: '/w/.env/x', destination: '/w/k' }))).toBe('NO_POLICY_MATCH');
  });

  it('an anchored pattern keeps the directories above it from being moved, except a root that holds every root', async () => {
    const gate = movesIn(['/w/a/secret']);
    expect(await outcome(gate, call({ source: '/w/a', destination: '/w/b' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, call({ source: '/w/a/secret', destination: '/w/b' }))).toBe('NO_POLICY_MATCH');
    expect(await outcome(gate, call({ source: '/w/a/other', destination: '/w/b' }))).toBe('permit');
    const excluded = compileExcludes(['/w/secret'], [ROOT]);
    expect(excluded('/w')).toBe(false); // listing the root stays possible
    expect(compileExcludes(['/w/secret'], [ROOT, '/v'])('/w')).toBe(true); // /w could move into /v
  });

  it('a pattern reading two components keeps the parent it reads from being renamed', () => {
    const excluded = compileExcludes(['*/repo/.git'], [ROOT]);
    expect(excluded('/w/x/repo')).toBe(true);
    expect(excluded('/w/x/repo/.git/config')).toBe(true);
    expect(excluded('/w/x/other')).toBe(false);
    expect(excluded('/w/x/repos')).toBe(false);
  });
});

// Small vocabularies, so random paths and random patterns meet.
const COMPONENTS = ['a', 'b', 's', '.git', 'x.pem', 'repo', '.env', '.env.local'];
const component = fc.constantFrom(...COMPONENTS);
const below = (dir: string, parts: string[]) => [dir, ...parts].join('/');
const pathIn = fc.array(component, { minLength: 1, maxLength: 5 }).map((parts) => below(ROOT, parts));
const TOKENS = ['*', '/', 'a', 's', '.git', 'repo', '.', 'pem', '/w'];
const randomPattern = fc
  .tuple(fc.constantFrom('*', '/'), fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 5 }))
  .map(([head, body]) => (head + body.join('')).replace(/\*\*+/g, '*').replace(/\/+$/, '/x'));
const pattern = fc.oneof(
  fc.constantFrom(
    '*/.git/*',
    '*/.git',
    '*.pem',
    '*/.env',
    '*/.env.*',
    '/w/a/s',
    '/w/a/s/*',
    '*/repo/.git',
    '*a*/s',
    '/w/*/s',
    '*/.env*',
    '*',
    '/*',
  ),
  randomPattern,
);
const patterns = fc.array(pattern, { minLength: 1, maxLength: 3 });

describe('path_within exclude: properties (fast-check)', () => {
  it('never excludes less than the patterns match as globs on the whole path', () => {
    fc.assert(
      fc.property(patterns, pathIn, (ps, path) => {
        if (ps.some((p) => compileGlob(p)(path))) expect(compileExcludes(ps, [ROOT])(path)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('cannot be bypassed by addressing the directory a "X/*" pattern names', () => {
    fc.assert(
      fc.property(patterns, pathIn, component, (ps, dir, child) => {
        const excluded = compileExcludes(ps, [ROOT]);
        const namesDir = ps.some(
          (p) => p.endsWith('/*') && p.length > 2 && compileGlob(p)(`${dir}/${child}`) && compileGlob(p.slice(0, -2))(dir),
        );
        if (namesDir) expect(excluded(dir)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('cannot be bypassed by any path below an excluded one', () => {
    fc.assert(
      fc.property(patterns, pathIn, fc.array(component, { minLength: 1, maxLength: 3 }), (ps, path, rest) => {
        // Below a directory kept only from being renamed (a parent an anchored pattern reads) lie ordinary paths.
        const excluded = compileExcludes(ps, [ROOT]);
        if (compileExcludedSubtrees(ps)(path)) expect(excluded(below(path, rest))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('cannot be bypassed by renaming (moving) a directory above an excluded path', () => {
    fc.assert(
      fc.property(patterns, pathIn, fc.nat(), pathIn, (ps, path, cut, target) => {
        const excluded = compileExcludes(ps, [ROOT]);
        if (!excluded(path)) return;
        const depth = path.split('/').length - 2; // components below the root
        if (depth < 2) return;
        const keep = 1 + (cut % (depth - 1)); // the moved directory sits 1..depth-1 components below the root
        const source = below(ROOT, path.split('/').slice(2, 2 + keep));
        if (target === source || target.startsWith(`${source}/`)) return; // nothing moves into itself
        if (excluded(source) || excluded(target)) return; // the gate refuses this move
        expect(excluded(target + path.slice(source.length)), `${ps} ${source} -> ${target}`).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });
});
