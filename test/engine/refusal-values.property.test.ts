// A refusal's reason is written to the audit log even where `[audit] record_args` is off or
// `redact` covers the field, so it names the argument and the cause, never the value the caller
// sent (a secret pasted into an argument must not reach the log that way). For random values in
// every argument-reading condition, whole or as a list item, no reason contains the value.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatRefusal, type Verdict } from '../../src/engine/index.ts';
import { ctx, gateOf } from './helpers.ts';

// One permit policy per argument condition (so each is the nearest permit of its own default
// deny), plus a refuse policy on a field, and hard limits (invariants) on the same fields.
const ARGUMENT_CONDITIONS: unknown[] = [
  { param_max: { field: 'v', max: 10 } },
  { param_min: { field: 'v', min: 10 } },
  { param_in: { field: 'v', values: ['alpha', 'beta'] } },
  { param_not_in: { field: 'v', values: ['alpha', 'beta'] } },
  { param_glob: { field: 'v', pattern: '/w/*.txt' } },
  { param_max_length: { field: 'v', max: 3 } },
  { path_within: { field: 'v', roots: ['/w', '/srv/data'], exclude: ['*/.env', '*.pem', '*/.git'] } },
  { path_within: { field: 'v', roots: ['/w'], follow_links: true } },
  { url_host_in: { field: 'v', hosts: ['*.example.com'] } },
  { budget: { field: 'v', max: 100, window: '1d' } },
  { any_of: [{ param_max: { field: 'v', max: 1 } }, { param_in: { field: 'v', values: ['alpha'] } }] },
  { not: { param_glob: { field: 'v', pattern: '*' } } },
];

const docs = ARGUMENT_CONDITIONS.map((condition, i) => ({
  policies: [
    { name: `p${i}`, effect: 'permit', conditions: [{ action: 'tool.run' }, condition] },
    {
      name: 'no-pem',
      effect: 'refuse',
      description: 'Key files stay here',
      conditions: [{ param_glob: { field: 'v', pattern: '*.pem' } }],
    },
  ],
}));
const invariants = [
  { name: 'cap', param_max: { field: 'v', max: 10 } },
  { name: 'floor', param_min: { field: 'v', min: 1 } },
];
const gates = [
  ...docs.map((doc) => gateOf(doc)),
  gateOf({ policies: [{ name: 'open', effect: 'permit', conditions: [] }] }, { invariants }),
];
// Everything the policy author wrote: a value inside it may show up because the policy says it.
const policyText = JSON.stringify([docs, invariants]);

// Plain strings, path-like ones (to reach the path causes: outside, excluded, folded, `..`),
// URLs, and numbers long enough to be a secret.
const value = fc.oneof(
  fc.string({ minLength: 6, maxLength: 40 }),
  fc.string({ minLength: 3, maxLength: 30 }).map((s) => `/w/${s}`),
  fc
    .constantFrom('/w/.ENV', '/w/a/../../etc', '/srv/data/K.PEM', '/W/x', '/w/./y', 'rel/path')
    .chain((base) => fc.string({ minLength: 0, maxLength: 12 }).map((s) => `${base}${s}`)),
  fc.webUrl().filter((u) => u.length >= 6),
  fc.integer({ min: 100_000, max: Number.MAX_SAFE_INTEGER }),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -100_000 }),
);
// Where the value sits: the field itself, or one item of a list.
const placed = fc.tuple(value, fc.integer({ min: 0, max: 2 })).map(([v, where]) => ({
  v,
  params: where === 0 ? { v } : where === 1 ? { v: [v] } : { v: ['/w/ok.txt', v] },
}));

const shown = (verdict: Verdict): string[] =>
  verdict.kind === 'refuse' || verdict.kind === 'invalidate' ? [verdict.reason, formatRefusal(verdict)] : [];

describe('a refusal reason never carries the argument value the caller sent', () => {
  it('for any value, whole or in a list, in every argument condition and hard limit', async () => {
    await fc.assert(
      fc.asyncProperty(placed, async ({ v, params }) => {
        const text = String(v);
        fc.pre(text.length >= 6 && !policyText.includes(text) && !policyText.includes(JSON.stringify(text).slice(1, -1)));
        // The value as JSON would escape it too: neither spelling may appear.
        const spellings = [text, JSON.stringify(text).slice(1, -1)];
        let refused = 0;
        for (const gate of gates) {
          const verdict = await gate.evaluate(ctx({ params }));
          if (verdict.kind === 'refuse') refused++;
          for (const reason of shown(verdict)) for (const s of spellings) expect(reason).not.toContain(s);
        }
        expect(refused).toBeGreaterThan(0); // the property is about refusals: some must happen
      }),
      { numRuns: 300 },
    );
  });
});
