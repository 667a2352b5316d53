import { describe, expect, it } from 'vitest';
import { BUILT_IN_DETECTORS, DETECTOR_NAMES } from '../../../src/engine/screen/detectors.ts';
import type { Span } from '../../../src/engine/screen/detector.ts';
import { CORPUS, LOOK_ALIKES } from './corpus.ts';
import { fake } from './fakes.ts';

function found(detector: string, text: string): string[] {
  const spans: Span[] = [];
  BUILT_IN_DETECTORS.get(detector)?.find(text, spans);
  return spans.map((s) => text.slice(s.start, s.end));
}

describe('built-in detectors', () => {
  it('has a corpus for every detector, and a detector for every corpus', () => {
    expect(Object.keys(CORPUS).sort()).toEqual([...DETECTOR_NAMES].sort());
  });

  for (const name of DETECTOR_NAMES) {
    describe(name, () => {
      const corpus = CORPUS[name] ?? { positive: [], negative: [] };
      it('finds exactly the secrets in its positive corpus', () => {
        expect(corpus.positive.length).toBeGreaterThan(0);
        for (const { text, secrets } of corpus.positive) expect(found(name, text), text).toEqual(secrets);
      });
      it('finds nothing in its negative corpus', () => {
        expect(corpus.negative.length).toBeGreaterThan(0);
        for (const text of corpus.negative) expect(found(name, text), text).toEqual([]);
      });
    });
  }

  it('matches none of the look-alikes (UUIDs, git SHAs, base64 images, hex, failed checksums)', () => {
    for (const text of LOOK_ALIKES) {
      for (const name of DETECTOR_NAMES) expect(found(name, text), `${name} in ${text.slice(0, 60)}`).toEqual([]);
    }
  });

  it("finds no secret of one kind in another kind's positives (other than the ones that contain each other)", () => {
    // An AWS secret key is written beside its access key id, and card/IBAN digits are not tokens.
    const allowed = new Set(['aws_secret_key>aws_access_key']);
    for (const [owner, { positive }] of Object.entries(CORPUS)) {
      for (const { text } of positive) {
        for (const name of DETECTOR_NAMES) {
          if (name === owner || allowed.has(`${owner}>${name}`)) continue;
          expect(found(name, text), `${name} in ${owner}'s corpus: ${text.slice(0, 60)}`).toEqual([]);
        }
      }
    }
  });

  it('carries a long token to its end past the regex bound (a 600-character OpenAI key is withheld whole)', () => {
    const long = `${fake.openaiKey(1)}${'x'.repeat(400)}`;
    expect(found('openai_key', `k=${long} end`)).toEqual([long]);
  });

  it('stays linear on hostile input built to make detectors retry', () => {
    // Each of these is quadratic (or worse) for a detector with unbounded quantifiers or a late
    // boundary check: a regression shows up as a test timeout, and as a wrong result below.
    const hostile: [string, Record<string, number>][] = [
      ['sk-proj-'.repeat(100_000), { openai_key: 1 }], // one token, carried to the end of the run
      ['4'.repeat(500_000), {}],
      ['4111 '.repeat(100_000), {}],
      ['a@'.repeat(200_000), {}],
      ['eyJ'.repeat(200_000), {}],
      ['-----BEGIN PRIVATE KEY-----'.repeat(20_000), {}],
      ['DE89 '.repeat(100_000), {}],
    ];
    for (const [text, expected] of hostile) {
      for (const name of DETECTOR_NAMES) expect(found(name, text).length, `${name} on ${text.slice(0, 12)}…`).toBe(expected[name] ?? 0);
    }
  });
});
