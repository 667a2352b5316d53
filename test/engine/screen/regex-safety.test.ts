import { describe, expect, it } from 'vitest';
import { customRegexProblem } from '../../../src/engine/screen/regex-safety.ts';

describe('custom screening patterns', () => {
  it.each([
    'TCK-[0-9]{6}',
    'INV-\\d{1,10}',
    '[A-Z]{2,4}-\\d{3,8}',
    '[A-Za-z0-9]{32,64}',
    '\\w{1,64}@\\w{1,64}\\.\\w{2,6}',
    '(?:\\d{3,4}-){3}\\d{4}',
    '(?:[a-z]{1,20}\\.){1,4}[a-z]{2,6}',
    'foo|bar|baz',
    '(?<id>EMP)-\\d{5}',
    '\\p{Lu}{3}-\\d{4}',
    '[\\]\\[]x{2}',
    'acct_[0-9a-f]{24}\\b',
  ])('accepts %s', (source) => {
    expect(customRegexProblem(source)).toBeUndefined();
  });

  it.each([
    ['(a+)+b', 'unbounded repetition "+" at offset 2'],
    ['\\S+', 'unbounded repetition "+"'],
    ['x{2,}', 'unbounded repetition "{2,}"'],
    ['(a|a){1,30}', 'astronomically many steps'],
    ['(?:a|ab){1,40}', 'astronomically many steps'],
    ['(\\w{1,9}){1,9}', 'steps at each position'],
    ['\\w{1,400}\\w{1,400}', 'steps at each position'],
    ['a{1,501}', 'repetition bound 501 at offset 1 is above 500'],
    ['(ab)\\1', 'backreference at offset 4'],
    ['(?<x>ab)\\k<x>', 'backreference'],
    ['(?=secret)\\w{5}', 'lookaround at offset 0'],
    ['(?<!x)y', 'lookaround'],
    ['a{0,3}', 'matches the empty string'],
    ['/TCK-\\d{6}/i', 'write the pattern without /slashes/ or flags'],
    ['[a-', 'not a valid regular expression'],
    ['', 'empty pattern'],
    ['x'.repeat(1025), 'longer than 1024 characters'],
  ])('refuses %s', (source, problem) => {
    expect(customRegexProblem(source)).toContain(problem);
  });
});
