import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exposeNames, TOOL_NAME } from '../../src/mcp-proxy/tool-names.ts';

describe('exposed tool names', () => {
  it('keeps <server>__<tool> when it is valid', () => {
    const names = exposeNames([
      { server: 'fs', name: 'read_file' },
      { server: 'everything', name: 'get-sum' },
    ]);
    expect([...names.keys()].sort()).toEqual(['everything__get-sum', 'fs__read_file']);
  });

  it('shortens long names and resolves collisions deterministically, whatever the order', () => {
    const items = [
      { server: 'fs', name: 'a.b' },
      { server: 'fs', name: 'a_b' },
      { server: 'fs', name: 'x'.repeat(100) },
    ];
    const one = exposeNames(items);
    const two = exposeNames([...items].reverse());
    expect([...one.entries()].sort()).toEqual([...two.entries()].sort());
    expect(one.get('fs__a_b')).toEqual({ server: 'fs', name: 'a_b' });
    for (const name of one.keys()) expect(name).toMatch(TOOL_NAME);
    expect(one.size).toBe(3);
  });

  it('always yields valid, unique names that map back to every input', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({
            server: fc.constantFrom('fs', 'web', 'a-very-long-server-name-xx'),
            name: fc.string({ minLength: 1, maxLength: 80 }),
          }),
          { selector: (x) => `${x.server}\0${x.name}`, maxLength: 30 },
        ),
        (items) => {
          const names = exposeNames(items);
          expect(names.size).toBe(items.length);
          for (const name of names.keys()) expect(name).toMatch(TOOL_NAME);
          expect(new Set([...names.values()].map((v) => `${v.server}\0${v.name}`)).size).toBe(items.length);
        },
      ),
      { numRuns: 200 },
    );
  });
});
