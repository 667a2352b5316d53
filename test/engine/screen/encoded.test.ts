// Secrets a tool result carries base64-encoded: a model decodes them as readily as it reads them,
// so the screens read the decoding too, and redact the whole run.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodedRuns } from '../../../src/engine/screen/encoded.ts';
import { screenOutput } from '../../../src/engine/screen/screen-output.ts';
import { fake } from './fakes.ts';
import { ctx, redactAll, screensOf } from './helpers.ts';

const AKIA = fake.awsAccessKey(2);
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const b64url = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

describe('base64-encoded secrets', () => {
  it('finds a key in a base64 run (standard and URL-safe alphabets) and redacts the whole run', () => {
    for (const encoded of [b64(`aws_access_key_id=${AKIA}\n`), b64url(`export AWS_KEY="${AKIA}"`)]) {
      const result = screenOutput(redactAll(), ctx(), { content: [{ type: 'text', text: `env: ${encoded} (base64)` }] });
      expect(
        result.findings.map((f) => f.detector),
        encoded,
      ).toEqual(['aws_access_key']);
      expect(result.findings[0]?.path).toBe('/content/0/text');
      expect(result.output).toEqual({ content: [{ type: 'text', text: 'env: [REDACTED:aws_access_key] (base64)' }] });
    }
  });

  it('reads base64 inside JSON text and structured content alike, and blocks it in block mode', () => {
    const doc = JSON.stringify({ files: [{ name: '.env', contents: b64(`AWS_ACCESS_KEY_ID=${AKIA}`) }] });
    const result = screenOutput(redactAll(), ctx(), {
      content: [{ type: 'text', text: doc }],
      structuredContent: { blob: b64(AKIA + ' ') },
    });
    expect(result.findings.map((f) => `${f.detector} ${f.path}`)).toEqual([
      'aws_access_key /content/0/text/files/0/contents',
      'aws_access_key /structuredContent/blob',
    ]);
    const blocking = screensOf({ name: 'no-keys', detectors: ['aws_access_key'], mode: 'block' });
    expect(screenOutput(blocking, ctx(), `x ${b64(`key ${AKIA}`)}`).blocked).toBeDefined();
  });

  it('leaves runs that decode to binary alone: hashes, identifiers, random bytes', () => {
    const sha = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';
    const random = randomBytes(300).toString('base64');
    const ident = 'AbstractSingletonProxyFactoryBeanDefinitionRegistry';
    const text = `commit ${sha}\nblob ${random}\nclass ${ident}`;
    const result = screenOutput(redactAll(), ctx(), text);
    expect(result.findings).toEqual([]);
    expect(result.output).toBe(text);
  });

  it('does not decode an image a content block carries, nor a run too long to be a secret someone encoded', () => {
    const image = b64(`${AKIA} `.repeat(8));
    const result = screenOutput(redactAll(), ctx(), { content: [{ type: 'image', data: image, mimeType: 'image/png' }] });
    expect(result.findings).toEqual([]);
    const huge = b64(`${'a'.repeat(300 * 1024)} ${AKIA}`);
    expect(screenOutput(redactAll(), ctx(), huge).findings).toEqual([]);
  });

  it('property: whatever surrounds an encoded key, it is found, and screening the output again finds nothing', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        fc.constantFrom(' ', '\n', '"', ':'),
        (before, after, sep) => {
          const text = `${before}${sep}${b64(`${before} ${AKIA} ${after}`)}${sep}${after}`;
          const first = screenOutput(redactAll(), ctx(), text);
          expect(first.findings.some((f) => f.detector === 'aws_access_key')).toBe(true);
          const again = screenOutput(redactAll(), ctx(), first.output);
          expect(again.findings).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: the runs found looking at every 24th character are the runs a full pass finds', () => {
    // The reference: every maximal run of base64 characters of 24 or more, with its `=` padding,
    // kept when three in four of its first sixteen groups lead as encoded text does.
    const reference = (text: string): number[] => {
      const out: number[] = [];
      for (const m of text.matchAll(/[A-Za-z0-9+/_-]+/g)) {
        const run = m[0];
        if (run.length < 24) continue;
        let led = 0;
        let groups = 0;
        for (let i = 0; i < run.length && groups < 16; i += 4, groups++) if (/[I-Za-f]/.test(run[i] as string)) led++;
        if (led * 4 < groups * 3) continue;
        let end = m.index + run.length;
        while (end < text.length && end - (m.index + run.length) < 2 && text[end] === '=') end++;
        out.push(m.index, end);
      }
      return out;
    };
    const piece = fc.oneof(
      fc.constantFrom(' ', '.', '=', '==', '\n', 'é', ':'),
      fc.string({ unit: fc.constantFrom('Q', 'V', 'd', 'T', 'X', '0', 'a', '+', '/', '_', '-'), maxLength: 60 }),
      fc.string({ maxLength: 30 }).map((t) => b64(t)),
      // Encoded text of 24 to 32 characters: runs just long enough, wherever they fall.
      fc
        .string({ unit: fc.constantFrom('a', 'K', 'z', '=', ' ', '7'), minLength: 18, maxLength: 24 })
        .map((t) => b64(t).replace(/=+$/, '')),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const text = pieces.join('');
        expect(encodedRuns(text) ?? []).toEqual(reference(text));
      }),
      { numRuns: 1000 },
    );
  });
});
