import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { screenOutput } from '../../../src/engine/screen/screen-output.ts';
import { fake } from './fakes.ts';
import { ALL_DETECTORS, ctx, redactAll, screensOf } from './helpers.ts';

const SECRETS: ((seed: number) => string)[] = [
  fake.awsAccessKey,
  (s) => `aws_secret_access_key = ${fake.awsSecretKey(s)}`,
  fake.githubToken,
  fake.githubPat,
  fake.gitlabToken,
  fake.slackToken,
  fake.slackWebhook,
  fake.stripeKey,
  fake.openaiKey,
  fake.openaiLegacyKey,
  fake.anthropicKey,
  fake.googleApiKey,
  fake.privateKey,
  fake.jwt,
  fake.cardNumber,
  fake.iban,
  fake.email,
];

/** A planted secret, always set off by a space or a newline so that it is a whole token. */
const planted = fc
  .record({ kind: fc.nat({ max: SECRETS.length - 1 }), seed: fc.integer({ min: 1, max: 1_000_000 }) })
  .map(({ kind, seed }) => (SECRETS[kind] as (seed: number) => string)(seed));
const filler = fc.string({ maxLength: 30 });
const sep = fc.constantFrom(' ', '\n', ' \n ');

/** Text with secrets planted in it, and the secrets (what must not survive redaction). */
const seeded = fc
  .array(fc.tuple(filler, sep, planted, sep), { maxLength: 4 })
  .chain((parts) =>
    filler.map((tail) => ({ text: parts.map(([f, a, s, b]) => `${f}${a}${s}${b}`).join('') + tail, secrets: parts.map(([, , s]) => s) })),
  );

/** A JSON document shaped like what tools return, holding seeded texts at random places. */
const documentOf = (leaf: fc.Arbitrary<{ text: string; secrets: string[] }>) =>
  fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf.map((l) => ({ value: l.text as unknown, secrets: l.secrets })),
      fc
        .array(tie('node') as fc.Arbitrary<{ value: unknown; secrets: string[] }>, { maxLength: 3 })
        .map((items) => ({ value: items.map((i) => i.value), secrets: items.flatMap((i) => i.secrets) })),
      fc
        .array(fc.tuple(fc.string({ maxLength: 8 }), tie('node') as fc.Arbitrary<{ value: unknown; secrets: string[] }>), { maxLength: 3 })
        .map((entries) => ({
          value: Object.fromEntries(entries.map(([k, v]) => [k, v.value])),
          secrets: entries.flatMap(([, v]) => v.secrets),
        })),
      // A text item that holds JSON: the walk goes into it.
      (tie('node') as fc.Arbitrary<{ value: unknown; secrets: string[] }>).map((n) => ({
        value: { type: 'text', text: JSON.stringify(n.value, null, 2) },
        secrets: n.secrets.map((s) => JSON.stringify(s).slice(1, -1)),
      })),
    ),
  })).node;

const mcpResult = documentOf(seeded).map(({ value, secrets }) => ({
  value: { content: [{ type: 'text', text: 'result' }], structuredContent: value },
  secrets,
}));

describe('redaction (properties)', () => {
  it('leaves none of a detected secret in the output: re-screening finds nothing', () => {
    const screens = redactAll();
    fc.assert(
      fc.property(mcpResult, ({ value, secrets }) => {
        const first = screenOutput(screens, ctx(), value);
        const serialized = JSON.stringify(first.output);
        for (const secret of secrets) expect(serialized).not.toContain(secret);
        const again = screenOutput(screens, ctx(), first.output);
        expect(again.findings).toEqual([]);
        expect(again.output).toBe(first.output);
      }),
      { numRuns: 300 },
    );
  });

  it('leaves nothing to find on a second pass even when secrets touch each other and odd text', () => {
    const screens = redactAll();
    const glued = fc
      .array(fc.oneof(planted, fc.string({ maxLength: 6, unit: 'binary' }), fc.constantFrom('\\n', '\\', '-', '.', '@', '4111 ', '"')), {
        maxLength: 8,
      })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(glued, (text) => {
        const first = screenOutput(screens, ctx(), { text, nested: JSON.stringify({ text }) });
        expect(screenOutput(screens, ctx(), first.output).findings).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('never puts a secret in a finding', () => {
    const screens = screensOf({ name: 'watch', detectors: ALL_DETECTORS, mode: 'report' });
    fc.assert(
      fc.property(documentOf(seeded), ({ value, secrets }) => {
        const findings = JSON.stringify(screenOutput(screens, ctx(), { [secrets[0] ?? 'k']: value }).findings);
        for (const secret of secrets) expect(findings).not.toContain(secret);
      }),
      { numRuns: 200 },
    );
  });

  it('never changes a result with no finding, and hands back the very same object', () => {
    const screens = redactAll();
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const result = screenOutput(screens, ctx(), value);
        if (result.findings.length === 0) expect(result.output).toBe(value);
      }),
      { numRuns: 500 },
    );
  });

  it('never changes anything in report mode', () => {
    const screens = screensOf({ name: 'watch', detectors: ALL_DETECTORS, mode: 'report' });
    fc.assert(
      fc.property(mcpResult, ({ value }) => {
        const result = screenOutput(screens, ctx(), value);
        expect(result.output).toBe(value);
        expect(result.blocked).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('finds each planted secret (redaction then hides all of them)', () => {
    const screens = redactAll();
    fc.assert(
      fc.property(seeded, ({ text, secrets }) => {
        const result = screenOutput(screens, ctx(), text);
        const total = result.findings.reduce((n, f) => n + f.count, 0);
        expect(total).toBeGreaterThanOrEqual(secrets.length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('redaction with custom patterns (properties)', () => {
  const screens = screensOf({ name: 'tickets', detectors: [], patterns: [{ name: 'ticket', regex: 'TCK-[0-9]{6}' }], mode: 'redact' });
  const ticket = fc.integer({ min: 0, max: 999_999 }).map((n) => `TCK-${String(n).padStart(6, '0')}`);
  // Filler that cannot form a ticket by itself (no 'T'), glued to the tickets or not.
  const filler = fc.string({ maxLength: 12 }).map((s) => s.replace(/T/g, 't'));

  it('leaves no match of a pattern in the output, in texts and keys alike', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(filler, ticket), { maxLength: 5 }), filler, (parts, tail) => {
        const text = parts.map(([f, t]) => f + t).join('') + tail;
        const out = screenOutput(screens, ctx(), { [text]: text, list: [text] }).output;
        expect(JSON.stringify(out)).not.toMatch(/TCK-[0-9]{6}/);
        const total = screenOutput(screens, ctx(), text).findings.reduce((n, f) => n + f.count, 0);
        expect(total).toBe(parts.length);
      }),
      { numRuns: 300 },
    );
  });

  it('hands back the very same value when no pattern matches', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const result = screenOutput(screens, ctx(), value);
        if (result.findings.length === 0) expect(result.output).toBe(value);
        else expect(JSON.stringify(value)).toMatch(/TCK-[0-9]{6}/);
      }),
      { numRuns: 300 },
    );
  });
});
