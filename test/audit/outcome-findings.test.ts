import { describe, expect, it } from 'vitest';
import { verifyAuditLog } from '../../src/audit/index.ts';
import { MAX_OUTCOME_FINDINGS } from '../../src/audit/entry.ts';
import { auditRejection, key, logNamer, openLog, tempDir } from './helpers.ts';

const fresh = logNamer(tempDir());
const finding = { screen: 'no-keys', detector: 'aws_access_key', path: '/content/0/text', count: 2 };

describe('outcome records with result-screening findings', () => {
  it('keeps findings and withheld, and the log still verifies', async () => {
    const log = await openLog(fresh());
    const rec = await log.append({
      type: 'outcome',
      evaluationId: 'e-1',
      outcome: 'ok',
      durationMs: 3,
      action: 'fx.leak',
      findings: [finding],
      withheld: true,
    });
    expect(rec).toMatchObject({ type: 'outcome', findings: [finding], withheld: true });
    await log.close();
    const report = await verifyAuditLog(log.path, key().publicKeys());
    expect(report.byType.outcome).toBe(1);
  });

  it('refuses malformed findings: extra keys (a value has no place), a zero count, too many', async () => {
    const log = await openLog(fresh());
    const append = (findings: unknown, withheld?: unknown) =>
      auditRejection(
        log.append({
          type: 'outcome',
          evaluationId: 'e',
          outcome: 'ok',
          durationMs: 1,
          findings,
          ...(withheld === undefined ? {} : { withheld }),
        } as never),
      );
    expect((await append([{ ...finding, value: 'AKIA...' }])).code).toBe('BAD_ENTRY');
    expect((await append([{ ...finding, count: 0 }])).code).toBe('BAD_ENTRY');
    expect((await append(Array.from({ length: MAX_OUTCOME_FINDINGS + 1 }, () => finding))).code).toBe('BAD_ENTRY');
    expect((await append([finding], false)).code).toBe('BAD_ENTRY');
    await log.close();
  });
});
