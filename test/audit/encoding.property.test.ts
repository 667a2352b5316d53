import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, hashArgs } from '../../src/engine/canonical-json.ts';
import { parseRecord } from '../../src/audit/chain.ts';
import { AuditError } from '../../src/audit/errors.ts';
import { argsHash, encodeRecord, sealRecord } from '../../src/audit/record.ts';
import { redact, pointerSteps } from '../../src/audit/redact.ts';
import { verifyAuditLog } from '../../src/audit/verify.ts';
import { key, tempDir, writeLog } from './helpers.ts';

const where = { file: 'prop', line: 1 };
const wellFormed = fc.string({ unit: 'grapheme', maxLength: 24 });
const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);

const verdictFields = fc
  .record(
    {
      action: wellFormed,
      args: wellFormed,
      argsError: wellFormed,
      callId: wellFormed,
      code: fc.constantFrom('NO_POLICY_MATCH', 'RATE_LIMITED'),
      evaluationId: wellFormed,
      evaluator: wellFormed,
      kind: fc.constantFrom('agent', 'user'),
      log: wellFormed,
      observed: fc.constant(true),
      permit: wellFormed,
      policy: wellFormed,
      prev: wellFormed,
      principal: wellFormed,
      reason: wellFormed,
      resource: wellFormed,
      seq: fc.nat(),
      session: wellFormed,
      time: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
      traceId: fc.stringMatching(/^[0-9a-f]{32}$/),
      verdict: fc.constantFrom('permit', 'refuse', 'invalidate'),
    },
    { requiredKeys: ['evaluationId', 'principal', 'verdict', 'seq', 'prev', 'log', 'time'] },
  )
  .map((r) => ({ ...r, type: 'verdict' }));

describe('audit record encoding', () => {
  it('the verdict fast path encodes exactly as canonicalJson', () => {
    fc.assert(
      fc.property(verdictFields, (r) => {
        expect(encodeRecord(r)).toBe(canonicalJson(r));
      }),
      { numRuns: 300 },
    );
  });

  it('the arguments hash is the engine hashArgs', () => {
    fc.assert(
      fc.property(json, (v) => {
        expect(argsHash(v)).toBe(hashArgs(v));
      }),
      { numRuns: 300 },
    );
    expect(argsHash(undefined)).toBe(hashArgs(undefined));
  });

  it('any record round-trips through its line and verifies', () => {
    const fields = fc.dictionary(
      fc.string({ maxLength: 8 }).filter((k) => !['hash', 'seq', 'prev', 'log', 'time', 'type'].includes(k)),
      json,
      { maxKeys: 6 },
    );
    fc.assert(
      fc.property(fields, fc.nat(), (extra, seq) => {
        const record = { ...extra, seq, prev: 'A'.repeat(43), log: 'log-1', time: 1, type: 'x.y' };
        const { hash, line } = sealRecord(record);
        expect(parseRecord(line, 0, where)).toEqual({ ...JSON.parse(canonicalJson(record)), hash });
      }),
      { numRuns: 200 },
    );
  });

  it('any change to one character of a line is detected', () => {
    const { line } = sealRecord({
      seq: 3,
      prev: 'A'.repeat(43),
      log: 'log-1',
      time: 1_770_000_000_000,
      type: 'verdict',
      evaluationId: 'e-1',
      principal: 'agent-1',
      verdict: 'refuse',
      code: 'POLICY_DENIED',
      args: 'abc',
    });
    fc.assert(
      fc.property(fc.nat(line.length - 1), fc.integer({ min: 32, max: 126 }), (at, c) => {
        const ch = String.fromCharCode(c);
        fc.pre(line[at] !== ch);
        const edited = line.slice(0, at) + ch + line.slice(at + 1);
        expect(() => parseRecord(edited, 0, where)).toThrow(AuditError);
      }),
      { numRuns: 500 },
    );
  });

  it('redaction removes exactly the pointed field and never mutates the input', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 5 }), json, { minKeys: 1, maxKeys: 5 }), (obj) => {
        const before = canonicalJson(obj);
        const key = Object.keys(obj)[0] as string;
        const pointer = `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
        const { value, removed } = redact(obj as never, [pointerSteps(pointer)]);
        expect(canonicalJson(obj)).toBe(before);
        expect(removed).toEqual([0]);
        expect(Object.hasOwn(value as object, key)).toBe(false);
        expect(Object.keys(value as object).length).toBe(Object.keys(obj).length - 1);
      }),
      { numRuns: 200 },
    );
  });
});

describe('tampering, at random', () => {
  let base: string[] = [];
  beforeAll(async () => {
    base = await writeLog(join(tempDir(), 'prop.jsonl'), 16, { checkpointEvery: { entries: 6 } });
  });

  type Op = { kind: 'drop' | 'swap' | 'duplicate' | 'edit'; at: number };
  const op = fc.oneof(
    fc.record({ kind: fc.constant('drop' as const), at: fc.integer({ min: 0, max: 17 }) }),
    fc.record({ kind: fc.constant('swap' as const), at: fc.integer({ min: 0, max: 17 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.integer({ min: 0, max: 18 }) }),
    fc.record({ kind: fc.constant('edit' as const), at: fc.integer({ min: 0, max: 18 }) }),
  );

  /** The tampered lines and the index verification must name. */
  function apply(o: Op): { lines: string[]; index: number } {
    const ls = base.slice();
    const at = Math.min(o.at, ls.length - 2);
    if (o.kind === 'drop') ls.splice(at, 1);
    if (o.kind === 'swap') [ls[at], ls[at + 1]] = [ls[at + 1] as string, ls[at] as string];
    if (o.kind === 'duplicate') {
      ls.splice(at + 1, 0, ls[at] as string);
      return { lines: ls, index: at + 1 };
    }
    if (o.kind === 'edit') ls[at] = (ls[at] as string).replace('"seq":', '"seq":1');
    return { lines: ls, index: at };
  }

  it('every drop, swap, duplicate or edit is found at its index', async () => {
    await fc.assert(
      fc.asyncProperty(op, async (o) => {
        const { lines, index } = apply(o);
        const err = await verifyAuditLog(lines.map((l) => `${l}\n`).join(''), key().publicKeys()).then(
          () => undefined,
          (e: AuditError) => e,
        );
        expect(err, JSON.stringify(o)).toBeInstanceOf(AuditError);
        expect(err?.index, `${JSON.stringify(o)}: ${err?.message}`).toBe(index);
      }),
      { numRuns: 60 },
    );
  });
});
