import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldForDetection } from '../../../src/engine/screen/fold.ts';
import { screenOutput } from '../../../src/engine/screen/screen-output.ts';
import { fake } from './fakes.ts';
import { ctx, redactAll, screensOf } from './helpers.ts';

const AKIA = fake.awsAccessKey(1);
/** The key with a zero-width space, a soft hyphen and a word joiner inside: it reads as the key. */
const broken = `${AKIA.slice(0, 4)}\u200b${AKIA.slice(4, 9)}\u00ad${AKIA.slice(9, 14)}\u2060${AKIA.slice(14)}`;
const fullwidth = [...AKIA].map((c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).join('');

describe('secrets written to slip past a detector, read as a reader takes them', () => {
  it('finds a key broken by invisible characters or written in fullwidth letters, and redacts all of it', () => {
    for (const hidden of [broken, fullwidth]) {
      const result = screenOutput(redactAll(), ctx(), { content: [{ type: 'text', text: `id ${hidden} ok` }] });
      expect(
        result.findings.map((f) => f.detector),
        JSON.stringify(hidden),
      ).toEqual(['aws_access_key']);
      expect(result.output).toEqual({ content: [{ type: 'text', text: 'id [REDACTED:aws_access_key] ok' }] });
    }
  });

  it('blocks it in block mode', () => {
    const screens = screensOf({ name: 'no-keys', detectors: ['aws_access_key'], mode: 'block' });
    expect(screenOutput(screens, ctx(), `key: ${broken}`).blocked).toBeDefined();
  });

  it('still finds what the raw text shows apart: removing a zero-width character glues nothing away', () => {
    const result = screenOutput(redactAll(), ctx(), `x\u200b${AKIA} and ${broken}`);
    expect(result.output).toBe('x\u200b[REDACTED:aws_access_key] and [REDACTED:aws_access_key]');
    expect(result.findings).toMatchObject([{ detector: 'aws_access_key', count: 2 }]);
  });

  it('maps spans back exactly, whatever precedes them', () => {
    const text = `\u200b\u200bａ\u200b${AKIA}\u200b tail`;
    const result = screenOutput(redactAll(), ctx(), text);
    expect(result.output).toBe('\u200b\u200bａ\u200b[REDACTED:aws_access_key]\u200b tail');
  });

  it('property: folding removes only format characters and reads fullwidth ASCII as ASCII; every span maps back in order', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'B', '\u200b', '\u00ad', 'Ａ', '\uff5e', '😀', ' ') }), (text) => {
        const folded = foldForDetection(text);
        if (folded === undefined) return;
        expect(folded.text).toBe(
          text.replace(/\p{Cf}/gu, '').replace(/[\uff01-\uff5e]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0)),
        );
        for (let s = 0; s < folded.text.length; s++) {
          const back = folded.back({ start: s, end: s + 1 });
          const original = text.slice(back.start, back.end);
          const plain = original.replace(/[\uff01-\uff5e]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));
          expect(plain).toBe(folded.text[s]);
        }
      }),
      { numRuns: 300 },
    );
    expect(foldForDetection('plain text, nothing to fold')).toBeUndefined();
  });
});
