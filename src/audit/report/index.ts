// The HTML audit report: verify logs, build the report's data, render one self-contained page.
import { writeFile } from 'node:fs/promises';
import type { AuditKeys } from '../keys.ts';
import type { VerifyOptions } from '../verify.ts';
import { renderReportHtml } from './html.ts';
import { loadLog } from './load.ts';
import { buildReportModel, type BuildOptions, type ReportModel } from './model.ts';

export { loadLog, type LoadedLog, type IntegrityBreak, type UnverifiedLine } from './load.ts';
export {
  buildReportModel,
  bucketWidth,
  type ReportModel,
  type ReportRow,
  type RowKind,
  type Trust,
  type LogIntegrity,
  type IntegrityModel,
  type SessionSummary,
  type ApprovalSummary,
  type ApprovalTotals,
  type ApprovalState,
  type TimeBucket,
  type NamedCount,
  type PrincipalSummary,
  type ReportSummary,
  type ReportTotals,
  type BuildOptions,
} from './model.ts';
export { renderReportHtml, scriptSafeJson, contentSecurityPolicy } from './html.ts';

export interface AuditReportOptions extends BuildOptions, VerifyOptions {}

/** Verifies each log (a broken one is reported, not thrown) and renders the page. */
export async function buildAuditReport(
  files: readonly string[],
  keys: AuditKeys,
  opts: AuditReportOptions = {},
): Promise<{ model: ReportModel; html: string }> {
  const { generatedAt, top, maxBuckets, ...verify } = opts;
  const logs = [];
  for (const f of files) logs.push(await loadLog(f, keys, verify));
  const model = buildReportModel(logs, {
    ...(generatedAt !== undefined ? { generatedAt } : {}),
    ...(top !== undefined ? { top } : {}),
    ...(maxBuckets !== undefined ? { maxBuckets } : {}),
  });
  return { model, html: renderReportHtml(model) };
}

/** `kavach audit report`: writes the page to `out`; resolves with the model it shows. */
export async function writeAuditReport(
  files: readonly string[],
  keys: AuditKeys,
  out: string,
  opts: AuditReportOptions = {},
): Promise<ReportModel> {
  const { model, html } = await buildAuditReport(files, keys, opts);
  // It embeds what the log holds (principals, reasons, recorded arguments): no wider than the log (0640).
  await writeFile(out, html, { mode: 0o640 });
  return model;
}
