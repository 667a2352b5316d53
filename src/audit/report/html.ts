import { createHash } from 'node:crypto';
import { REPORT_JS } from './client.ts';
import type { ReportModel } from './model.ts';
import { REPORT_CSS } from './styles.ts';

/**
 * JSON that can sit inside a `<script type="application/json">` element: `<`, `>` and `&` are
 * written as \u escapes, so no recorded string can close the element (`</script>`) or open a
 * comment (`<!--`); U+2028/U+2029 too, for any consumer that treats the text as script.
 * JSON.parse reads the escapes back to the same characters.
 */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The Content-Security-Policy of the report: nothing may load (no network, no images, no frames);
 * only the page's own inline script and stylesheet run, pinned by their hashes.
 */
export function contentSecurityPolicy(script: string, style: string): string {
  return [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "img-src 'none'",
    "font-src 'none'",
    "connect-src 'none'",
    "media-src 'none'",
    "object-src 'none'",
    "frame-src 'none'",
    "worker-src 'none'",
    "manifest-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

/**
 * One self-contained HTML page. Every recorded string lives only in the JSON data block; the
 * markup here is fixed text. Without JavaScript the page still says whether the log verified.
 */
export function renderReportHtml(model: ReportModel): string {
  const broken = model.integrity.status === 'broken';
  const firstBreak = model.integrity.logs.find((g) => g.broken)?.broken;
  // Fixed words and a number only: the no-script fallback never carries recorded text.
  const fallback = broken
    ? `INTEGRITY BROKEN${firstBreak && firstBreak.index >= 0 ? ` at record ${Math.trunc(firstBreak.index)}` : ''}. Enable JavaScript for the details, or run kavach audit verify.`
    : 'INTEGRITY VERIFIED. Enable JavaScript to read the report.';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(REPORT_JS, REPORT_CSS)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${broken ? '[INTEGRITY BROKEN] ' : ''}Kavach audit report</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<main>
<header class="top">
  <div class="brand"><h1>Kavach audit report</h1><span class="tag">tamper-evident log review</span></div>
  <div class="meta" id="meta"></div>
</header>
<section id="integrity" class="banner ${broken ? 'bad' : 'ok'}" role="alert" aria-live="assertive" data-status="${broken ? 'broken' : 'verified'}">
  <noscript><div class="state">${fallback}</div></noscript>
</section>
<div class="cards" id="cards"></div>
<div class="charts">
  <section class="panel wide"><h2>Verdicts over time</h2><div id="chart-time"></div></section>
  <section class="panel"><h2>Refusals by code</h2><div id="chart-codes"></div></section>
  <section class="panel"><h2>Refusals by tool</h2><div id="chart-tools"></div></section>
  <section class="panel"><h2>Top principals</h2><div id="chart-principals"></div></section>
  <section class="panel wide"><h2>Observe mode: what enforcement would have blocked</h2><div id="chart-observe"></div></section>
</div>
<section class="panel" id="sessions">
  <h2>Agent sessions</h2>
  <div class="filters"><label>order<select id="sessions-sort"><option value="attention">needs attention first</option><option value="time">first call</option></select></label><p class="count" id="sessions-count"></p></div>
  <table class="sessions">
    <thead><tr><th>session</th><th>principal</th><th>span (UTC)</th><th class="num" title="a call that waited for an approval counts once">calls</th><th class="num">refused</th><th class="num">invalidated</th><th class="num">would block</th><th class="num">drift</th><th class="num">approvals</th><th>activity (reloads dashed)</th></tr></thead>
    <tbody id="sessions-body"></tbody>
  </table>
  <div id="sessions-more"></div>
</section>
<section class="panel" id="timeline">
  <h2>Timeline</h2>
  <div class="filters">
    <label>session<select id="f-session"></select></label>
    <label>principal<select id="f-principal"></select></label>
    <label>tool<select id="f-tool"></select></label>
    <label>verdict<select id="f-verdict">
      <option value="">all records</option>
      <option value="problems">refusals, invalidations, drift, would-block</option>
      <option value="permit">permit</option>
      <option value="refuse">refuse</option>
      <option value="invalidate">invalidate</option>
      <option value="would">observe mode: would block</option>
      <option value="approvals">approvals: requests, decisions, uses and their calls</option>
      <option value="approvals-open">approvals pending or denied</option>
      <option value="events">log events (approvals, reloads, invalidations, checkpoints)</option>
      <option value="unverified">unverified (after a break)</option>
    </select></label>
    <label>search<input type="search" id="f-q" placeholder="principal, tool, code, reason, args…" autocomplete="off" spellcheck="false"></label>
    <label class="check"><span><input type="checkbox" id="f-checkpoints"> show checkpoints</span></label>
    <button type="button" id="f-reset">reset</button>
  </div>
  <div id="session-focus" class="focus" hidden></div>
  <div id="approval-focus" class="focus" hidden></div>
  <p class="count" id="timeline-count"></p>
  <table class="timeline">
    <thead><tr><th>seq</th><th>time (UTC)</th><th>session</th><th>principal</th><th>tool</th><th>verdict</th><th>code</th><th>reason</th></tr></thead>
    <tbody id="timeline-body"></tbody>
  </table>
  <div class="pager"><button type="button" id="pg-prev">◀ previous</button><span id="pg-label"></span><button type="button" id="pg-next">next ▶</button></div>
</section>
<footer>Generated by kavach audit report. Self-contained: this file loads nothing from the network. Recorded text is shown as text, never as markup.</footer>
</main>
<script type="application/json" id="kavach-report-data">${scriptSafeJson(model)}</script>
<script>${REPORT_JS}</script>
</body>
</html>
`;
}
