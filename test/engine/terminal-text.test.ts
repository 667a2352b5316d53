import { describe, expect, it } from 'vitest';
import { terminalJson, visible } from '../../src/engine/terminal-text.ts';

describe('text from elsewhere, as a terminal or page shows it', () => {
  it('escapes every format character (\\p{Cf}), not only the bidi and zero-width ones', () => {
    for (const c of ['\u202e', '\u200b', '\u206a', '\u206f', '\ufff9', '\u{1d173}', '\u{e0041}', '\u0600', '\u2028', '\u009b'])
      expect(visible(`a${c}b`), c.codePointAt(0)?.toString(16)).not.toContain(c);
    expect(visible('Ig\u206Anore')).toBe('Ig\\u206anore');
    expect(visible('x\u{1d173}')).toBe('x\\u{1d173}');
    // Still the same JSON value.
    expect(JSON.parse(terminalJson({ p: 'a\u206ab\u{1d173}' }))).toEqual({ p: 'a\u206ab\u{1d173}' });
  });

  it('leaves ordinary text alone, emoji with a variation selector included', () => {
    for (const text of ['plain text', 'Grüße, 你好', '❤️ ok', '1️⃣']) expect(visible(text)).toBe(text);
  });
});
