/**
 * The audit report in a real browser: Debian's chromium driven by playwright-core opens the page
 * from a file:// URL. Outside CI a machine without chromium skips this file; with CI=true it fails.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAuditReport } from '../../src/audit/report/index.ts';
import { key, lines, openLog, tempDir, verdict, writeLines } from '../audit/helpers.ts';
import {
  APPROVAL_END,
  NOTE_BIDI,
  NOTE_SCRIPT,
  writeApprovalRun,
  writeGateRun,
  XSS_BREAKOUT,
  XSS_IMG,
  XSS_SCRIPT,
  type ApprovalRun,
} from '../audit/report-fixture.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = resolve('test-artifacts');
const ci = process.env.CI === 'true';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) process.stderr.write(`kavach tests: no ${CHROMIUM}${ci ? ' (CI=true: failing)' : ' (not CI: browser test skipped)'}\n`);

const dir = tempDir();
let browser: Browser;
const pages: { verified: string; broken: string; large: string; approvals: string } = {
  verified: '',
  broken: '',
  large: '',
  approvals: '',
};
let approvalRun: ApprovalRun;

/** What a page did that it must not: dialogs, requests other than itself, script errors, CSP violations. */
interface Watch {
  dialogs: string[];
  requests: string[];
  errors: string[];
}

async function open(file: string): Promise<{ page: Page; watch: Watch }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const url = pathToFileURL(file).href;
  const watch: Watch = { dialogs: [], requests: [], errors: [] };
  page.on('dialog', (d) => {
    watch.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('request', (r) => {
    if (r.url() !== url) watch.requests.push(r.url());
  });
  page.on('pageerror', (e) => watch.errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') watch.errors.push(m.text());
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
  return { page, watch };
}

const rowTexts = (page: Page, cell: string): Promise<string[]> =>
  page.$$eval(`#timeline-body tr.row td.${cell}`, (tds) => tds.map((td) => td.textContent ?? ''));

describe.skipIf(!haveChromium && !ci)('audit report in headless chromium', () => {
  beforeAll(async () => {
    const run = await writeGateRun(dir, key());
    const keys = key().publicKeys();
    pages.verified = join(dir, 'report.html');
    writeFileSync(pages.verified, (await buildAuditReport([run.path], keys)).html);
    const tampered = join(dir, 'tampered.jsonl');
    const ls = lines(run.path);
    ls[3] = (ls[3] as string).replace('"principal":"research-bot"', '"principal":"innocent-bot"');
    writeLines(tampered, ls);
    pages.broken = join(dir, 'broken.html');
    writeFileSync(pages.broken, (await buildAuditReport([tampered], keys)).html);
    // Thousands of records: the timeline pages them.
    const largeLog = join(dir, 'large.jsonl');
    const log = await openLog(largeLog);
    await Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        log.append(
          verdict({
            session: `s-${i % 40}`,
            principal: `agent-${i % 7}`,
            verdict: i % 5 === 0 ? 'refuse' : 'permit',
            code: i % 5 === 0 ? 'NO_POLICY_MATCH' : undefined,
          }),
        ),
      ),
    );
    await log.close();
    pages.large = join(dir, 'large.html');
    writeFileSync(pages.large, (await buildAuditReport([largeLog], keys)).html);
    // Approvals, outcome records without a session, long names; made while the wire request still waits.
    approvalRun = await writeApprovalRun(dir, key());
    pages.approvals = join(dir, 'approvals.html');
    writeFileSync(pages.approvals, (await buildAuditReport([approvalRun.path], keys, { generatedAt: APPROVAL_END })).html);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('shows the verified banner, the timeline and the charts, and loads nothing', async () => {
    const { page, watch } = await open(pages.verified);
    const banner = page.locator('#integrity');
    expect(await banner.getAttribute('data-status')).toBe('verified');
    expect(await banner.getAttribute('class')).toBe('banner ok');
    const text = await banner.innerText();
    expect(text).toContain('INTEGRITY VERIFIED');
    expect(text).toContain(`4 signed checkpoints (key ${key().kid})`);
    expect(text).toContain('nothing unsealed');
    expect(await page.title()).toBe('[verified] Kavach audit report');

    // The 4 checkpoints are folded until the toggle shows them.
    expect(await page.locator('#timeline-body tr.row').count()).toBe(20);
    expect(await page.locator('#timeline-count').innerText()).toMatch(/^20 of 24 records · 4 checkpoints folded/);
    expect(await page.locator('#timeline-body tr.k-checkpoint').count()).toBe(0);
    const refused = page.locator('#timeline-body tr.v-refuse');
    expect(await refused.count()).toBe(4);
    expect(await refused.first().locator('.badge').first().innerText()).toBe('REFUSE');
    expect(await page.locator('#timeline-body tr.v-invalidate .b-drift').count()).toBe(1);
    expect(await page.locator('#timeline-body tr.v-would').count()).toBe(3);
    expect(await page.locator('#timeline-body tr.k-reload').count()).toBe(2);
    expect(await page.locator('#timeline-body tr.k-reload.failed .badge').innerText()).toBe('RELOAD FAILED');
    expect(await page.locator('#chart-time svg rect').count()).toBeGreaterThan(5);
    expect(await page.locator('#chart-time svg line.s-reload').count()).toBe(1);
    expect(await page.locator('#chart-observe').innerText()).toMatch(/Of 4 calls evaluated in observe mode .* would have blocked 3\./s);
    expect(await page.locator('#sessions-body tr').count()).toBe(4);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'audit-report.png'), fullPage: true });
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('filters the timeline by principal, verdict, session and search', async () => {
    const { page, watch } = await open(pages.verified);
    await page.selectOption('#f-principal', { label: 'research-bot' });
    // research-bot's 6 calls, with the two policy reloads inside their span marked on the timeline
    expect(await rowTexts(page, 'who')).toEqual([
      'research-bot',
      'research-bot',
      'research-bot',
      'research-bot',
      'research-bot',
      '',
      '',
      'research-bot',
    ]);
    expect(await page.locator('#timeline-body tr.k-reload').count()).toBe(2);
    await page.selectOption('#f-verdict', 'refuse');
    expect(await rowTexts(page, 'tool')).toEqual(['fs.rm', 'net.fetch']);
    await page.click('#f-reset');
    expect(await page.locator('#timeline-body tr.row').count()).toBe(20);
    await page.locator('#sessions-body tr', { hasText: 's-beta' }).click();
    expect(await rowTexts(page, 'sess')).toEqual(['s-beta', 's-beta', 's-beta', 's-beta']);
    const focus = page.locator('#session-focus');
    expect(await focus.isVisible()).toBe(true);
    expect(await focus.innerText()).toMatch(/^s-beta · billing-bot · [^]*4 calls\s+1 refused\s+1 invalidated\s+0 would block\s+1 drift/);
    expect(await focus.locator('svg .f-drift').count()).toBe(1);
    await page.click('#f-reset');
    expect(await focus.isVisible()).toBe(false);
    await page.fill('#f-q', 'exfil');
    // the search box waits for typing to pause before filtering
    await expect.poll(() => page.locator('#timeline-body tr.row').count()).toBe(1);
    expect(await rowTexts(page, 'tool')).toEqual(['net.fetch']);
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('shows <script> and <img onerror> from the log as text: nothing runs, nothing is injected', async () => {
    const { page, watch } = await open(pages.verified);
    const xssRow = page.locator('#timeline-body tr.row', { hasText: XSS_IMG });
    expect(await xssRow.locator('td.who').textContent()).toBe(XSS_SCRIPT);
    expect(await xssRow.locator('td.tool').textContent()).toBe(XSS_IMG);
    expect(await xssRow.locator('td.reason').textContent()).toContain(`no policy permits '${XSS_IMG}'`);
    await xssRow.click();
    const detail = page.locator('#timeline-body tr.detail');
    expect(await detail.innerText()).toContain(XSS_BREAKOUT);
    expect(await page.locator('#timeline-body tr.k-invalidation td.reason').innerText()).toContain(
      `offboarded after incident ${XSS_BREAKOUT}`,
    );
    expect(await page.locator('#f-principal option', { hasText: XSS_SCRIPT }).count()).toBe(1);
    // The only elements of those kinds are the page's own two scripts; no image, no iframe, no handler attribute.
    // (a string: the test's TypeScript has no DOM types)
    const dom = await page.evaluate(`({
      scripts: document.querySelectorAll('script').length,
      images: document.querySelectorAll('img, iframe, object, embed').length,
      handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    })`);
    expect(dom).toEqual({ scripts: 2, images: 0, handlers: 0 });
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('counts approvals pending and denied in the tiles, and sessions as the session table does', async () => {
    const { page, watch } = await open(pages.approvals);
    const tile = (k: string) => page.locator(`#cards .card[data-card="${k}"]`).innerText();
    expect(await tile('approvals')).toBe('5\napproval requests');
    expect(await tile('approvals-pending')).toBe('1\napprovals pending');
    expect(await tile('approvals-denied')).toBe('1\napprovals denied');
    // Outcome records without a session joined their calls' sessions: no phantom row, tile = table.
    expect(await tile('sessions')).toBe('4\nsessions');
    expect(await page.locator('#sessions-body tr').count()).toBe(4);
    expect(await page.locator('#sessions-body', { hasText: '(no session)' }).count()).toBe(0);
    expect(await page.locator('#sessions-count').innerText()).toMatch(/^4 sessions · /);
    const wires = page.locator('#sessions-body tr', { hasText: 'wires.nightly.2026-03-14' });
    expect(await wires.locator('td.apr').innerText()).toBe('1\n1 pending');
    expect(await page.locator('#sessions-body tr', { hasText: 'batch-0042' }).locator('td.apr').innerText()).toBe('1\n1 denied');
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it("shows each approval event in its session's timeline, linked by its id from request to decision to use", async () => {
    const { page, watch } = await open(pages.approvals);
    expect(await page.locator('#timeline-body tr.k-approval').count()).toBe(10);
    await page.locator('#sessions-body tr', { hasText: 'a7f3c9e1' }).click();
    // The session's lane marks its approval events: requested, granted, used.
    expect(await page.locator('#session-focus svg .apr-mark').count()).toBe(3);
    const badges = await page.$$eval('#timeline-body tr.row td:nth-child(6) .badge', (b) => b.map((x) => x.textContent));
    expect(badges).toEqual([
      'PERMIT',
      'OUTCOME ok',
      'PERMIT',
      'OUTCOME ok',
      'APPROVAL REQUESTED',
      // The refusal a grant settled is the same call as the permit below: it is not counted twice.
      'REFUSE · asked again once decided',
      'APPROVAL GRANTED',
      'APPROVAL USED',
      'PERMIT',
      'OUTCOME ok',
    ]);
    // Outcome rows show the session they were joined to, marked as not in the record.
    expect(await page.locator('#timeline-body td.sess.joined').count()).toBe(3);
    const granted = page.locator('#timeline-body tr.k-approval', { hasText: 'APPROVAL GRANTED' });
    expect(await granted.locator('td.reason').innerText()).toBe(
      'granted by alice@finance, usable until 2026-03-14 10:10:00 UTC\nnote: customer verified by phone; order #4471',
    );
    await granted.locator('button.apr-link').click();
    const focus = page.locator('#approval-focus');
    expect(await focus.isVisible()).toBe(true);
    expect(await focus.locator('.chain-head').textContent()).toBe(`approval ${approvalRun.ids.granted}USED`);
    const steps = (await focus.locator('li').allInnerTexts()).map((t) => t.replace(/^\S+ /, ''));
    expect(steps).toEqual([
      'requested by support-agent.eu-west-1.prod for refunds.issue',
      'call refused APPROVAL_REQUIRED',
      'granted by alice@finance · note: customer verified by phone; order #4471',
      'used by the call below',
      'call permitted',
    ]);
    expect(await page.locator('#timeline-body tr.row').count()).toBe(5);
    await focus.locator('button', { hasText: 'show all records' }).click();
    expect(await focus.isVisible()).toBe(false);
    // Choosing a session leaves an approval's records too.
    await page.locator('#timeline-body tr.row button.apr-link').first().click();
    expect(await focus.isVisible()).toBe(true);
    await page.selectOption('#f-session', { label: 'wires.nightly.2026-03-14' });
    expect(await focus.isVisible()).toBe(false);
    expect(await page.locator('#timeline-body tr.k-approval').count()).toBe(2);
    // A request whose time ran out unrecorded says so on its row.
    const lapsed = page.locator(`#timeline-body tr.k-approval:has(button[data-approval="${approvalRun.ids.lapsing}"])`);
    await page.click('#f-reset');
    expect(await lapsed.locator('.lapsed').innerText()).toBe(
      'expired 2026-03-14 10:55:00.000 UTC with no decision (no record says so: nothing touched it again)',
    );
    expect(await page.locator('#timeline-body .lapsed').count()).toBe(1);
    // The filter of open approvals: the waiting wire and the denied refund, with the calls naming them.
    await page.click('#f-reset');
    await page.selectOption('#f-verdict', 'approvals-open');
    expect(await rowTexts(page, 'sess')).toEqual([
      'refund-queue/2026-03-14/batch-0042',
      'refund-queue/2026-03-14/batch-0042',
      'refund-queue/2026-03-14/batch-0042',
      'refund-queue/2026-03-14/batch-0042',
      'wires.nightly.2026-03-14',
      'wires.nightly.2026-03-14',
      'wires.nightly.2026-03-14',
    ]);
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('shows an approver note with <script> and bidi overrides as text: nothing runs, nothing is reordered', async () => {
    const { page, watch } = await open(pages.approvals);
    const denied = page.locator('#timeline-body tr.k-approval', { hasText: 'APPROVAL DENIED' });
    expect(await denied.locator('.note-text').textContent()).toBe(NOTE_SCRIPT);
    const pendingGrant = page.locator('#timeline-body tr.k-approval', { hasText: 'carol@treasury' });
    const shown = await pendingGrant.locator('.note-text').textContent();
    expect(NOTE_BIDI).toContain('\u202E');
    expect(shown).toBe('ok by me \\u202egnp.exe\\u202c (ticket 4471)');
    await pendingGrant.click();
    const detail = page.locator('#timeline-body tr.detail');
    expect(await detail.innerText()).toContain('note\nok by me \\u202egnp.exe\\u202c (ticket 4471)');
    await pendingGrant.click();
    await denied.click();
    expect(await detail.innerText()).toContain(`note\n${NOTE_SCRIPT}`);
    // No bidi control character anywhere in what the page renders.
    expect(await page.evaluate('/[\\u202a-\\u202e\\u2066-\\u2069]/.test(document.body.innerText)')).toBe(false);
    const dom = await page.evaluate(`({
      scripts: document.querySelectorAll('script').length,
      handlers: [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
    })`);
    expect(dom).toEqual({ scripts: 2, handlers: 0 });
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('shows fillers, format characters and stray variation selectors in names as escapes, in cells and filter options', async () => {
    const path = join(dir, 'invisible.jsonl');
    const log = await openLog(path);
    await log.append(verdict({ principal: 'admin\u3164', session: 'sess\u2800\u180e', action: 'fs.read\u034f\ufe0e' }));
    await log.append(verdict({ principal: 'ops\u00ad\u{e0100}\u115f', session: 'love-\u2764\ufe0f', action: 'fs.list\u2061' }));
    await log.close();
    const html = join(dir, 'invisible.html');
    writeFileSync(html, (await buildAuditReport([path], key().publicKeys())).html);
    const { page, watch } = await open(html);
    const options = (id: string): Promise<{ text: string; title: string }[]> =>
      page.$$eval(`#${id} option`, (os) =>
        os
          .filter((o) => Number(o.getAttribute('value')) >= 0)
          .map((o) => ({ text: o.textContent ?? '', title: o.getAttribute('title') ?? '' })),
      );
    const both = (s: string) => ({ text: s, title: s });
    expect(await options('f-principal')).toEqual(expect.arrayContaining([both('admin\\u3164'), both('ops\\u00ad\\u{e0100}\\u115f')]));
    // The heart's emoji selector stays; one after "sess" or "fs.read" shows.
    expect(await options('f-session')).toEqual(expect.arrayContaining([both('sess\\u2800\\u180e'), both('love-\u2764\ufe0f')]));
    expect(await options('f-tool')).toEqual(expect.arrayContaining([both('fs.read\\u034f\\ufe0e'), both('fs.list\\u2061')]));
    expect((await rowTexts(page, 'who')).filter(Boolean).sort()).toEqual(['admin\\u3164', 'ops\\u00ad\\u{e0100}\\u115f']);
    expect(
      await page.evaluate('/[\\u3164\\u115f\\u2800\\u180e\\u034f\\u00ad\\u2061\\ufe0e\\u{e0100}]/u.test(document.body.innerText)'),
    ).toBe(false);
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('folds checkpoint rows until the toggle shows them', async () => {
    const { page, watch } = await open(pages.approvals);
    expect(await page.locator('#timeline-body tr.k-checkpoint').count()).toBe(0);
    expect(await page.locator('#timeline-count').innerText()).toMatch(/^26 of 30 records · 4 checkpoints folded/);
    await page.check('#f-checkpoints');
    expect(await page.locator('#timeline-body tr.k-checkpoint').count()).toBe(4);
    expect(await page.locator('#timeline-count').innerText()).toMatch(/^30 of 30 records · click/);
    await page.uncheck('#f-checkpoints');
    expect(await page.locator('#timeline-body tr.k-checkpoint').count()).toBe(0);
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('says verified once: the state line, then what was checked', async () => {
    const { page } = await open(pages.approvals);
    expect(await page.locator('#integrity .state').innerText()).toBe('INTEGRITY VERIFIED');
    expect(await page.locator('#integrity .headline').innerText()).toBe(
      `Every record's hash and link checked; 4 checkpoint signatures verified (key ${key().kid})`,
    );
    await page.close();
  });

  it('wraps principal and session names at separators, never mid-word; a very long token still fits its cell', async () => {
    const long = 'x'.repeat(90);
    const path = join(dir, 'names.jsonl');
    const log = await openLog(path);
    await log.append(verdict({ principal: long, session: 'chat_2026-03-14T10:00Z_a7f3c9e1' }));
    await log.close();
    const html = join(dir, 'names.html');
    writeFileSync(html, (await buildAuditReport([path], key().publicKeys())).html);
    for (const file of [pages.approvals, html]) {
      const { page, watch } = await open(file);
      await page.setViewportSize({ width: 900, height: 900 });
      // Each name cell's rendered lines, read back from where each character lands.
      const cells =
        (await page.evaluate(`[...document.querySelectorAll('#timeline-body td.who, #timeline-body td.sess, #timeline-body td.tool, #sessions-body td.cell-id')].map((td) => {
        const lines = [];
        let top = null;
        const walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
          for (let i = 0; i < n.data.length; i++) {
            const r = document.createRange();
            r.setStart(n, i);
            r.setEnd(n, i + 1);
            const y = Math.round(r.getBoundingClientRect().top);
            if (top === null || Math.abs(y - top) > 3) { lines.push(''); top = y; }
            lines[lines.length - 1] += n.data[i];
          }
        }
        return { text: td.textContent, lines, wordBreak: getComputedStyle(td).wordBreak, overflow: td.scrollWidth > td.clientWidth + 1 };
      })`)) as { text: string; lines: string[]; wordBreak: string; overflow: boolean }[];
      expect(cells.length).toBeGreaterThan(0);
      expect(cells.some((c) => c.lines.length > 1)).toBe(true);
      for (const c of cells) {
        expect(c.wordBreak).not.toBe('break-all');
        expect(c.overflow).toBe(false);
        for (const line of c.lines.slice(0, -1)) {
          // A line ends at a separator, or is a 24-character piece of a token too long for any line.
          if (!/[.\-_/:@,]\s*$/.test(line)) expect([c.text, line.length]).toEqual([long, 24]);
        }
      }
      expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
      await page.close();
    }
  });

  it('says BROKEN at the tampered record and marks what follows unverified', async () => {
    const { page, watch } = await open(pages.broken);
    const banner = page.locator('#integrity');
    expect(await banner.getAttribute('data-status')).toBe('broken');
    expect(await banner.getAttribute('class')).toBe('banner bad');
    expect(await banner.innerText()).toContain('INTEGRITY BROKEN');
    expect(await banner.locator('.breakbox').innerText()).toMatch(/^Broken at record 3 \[HASH_MISMATCH\]: /);
    expect(await banner.locator('.breakbox').getAttribute('data-index')).toBe('3');
    expect(await page.title()).toBe('[INTEGRITY BROKEN] Kavach audit report');
    // 21 records from the break on; the 4 checkpoints among them are folded until asked for.
    expect(await page.locator('#timeline-body tr.untrusted').count()).toBe(17);
    await page.check('#f-checkpoints');
    expect(await page.locator('#timeline-body tr.untrusted').count()).toBe(21);
    const forged = page.locator('#timeline-body tr.row').nth(3);
    expect(await forged.locator('td.who').textContent()).toBe('innocent-bot');
    expect(await forged.locator('.b-unverified').textContent()).toBe('UNVERIFIED');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'audit-report-broken.png') });
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it("marks an approval's records at or after a break UNVERIFIED in its chain, and does not count them", async () => {
    // A decision rewritten after the fact: the chain breaks there, and the "deny" now names someone else.
    const ls = lines(approvalRun.path);
    const at = ls.findIndex((l) => l.includes('"bob@finance"'));
    expect(at).toBeGreaterThan(0);
    ls[at] = (ls[at] as string).replace('"bob@finance"', '"security-lead"');
    const forgedLog = join(dir, 'forged-approval.jsonl');
    writeLines(forgedLog, ls);
    const forgedPage = join(dir, 'forged-approval.html');
    writeFileSync(forgedPage, (await buildAuditReport([forgedLog], key().publicKeys(), { generatedAt: APPROVAL_END })).html);
    const { page, watch } = await open(forgedPage);
    await page.locator(`#timeline-body button.apr-link[data-approval="${approvalRun.ids.denied}"]`).first().click();
    const focus = page.locator('#approval-focus');
    expect(await focus.isVisible()).toBe(true);
    // The forged deny (and the refusal after it) are listed but not counted: the request is not DENIED.
    const head = await focus.locator('.chain-head').innerText();
    expect(head).toMatch(/EXPIRED .*\n2 records UNVERIFIED, not counted$/s);
    expect(head).not.toContain('DENIED');
    const forgedStep = focus.locator('li', { hasText: 'security-lead' });
    expect(await forgedStep.locator('.b-unverified').textContent()).toBe('UNVERIFIED');
    expect(await focus.locator('li', { hasText: 'requested by' }).locator('.b-unverified').count()).toBe(0);
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('pages a log of thousands of records', async () => {
    const { page, watch } = await open(pages.large);
    expect(await page.locator('#timeline-body tr.row').count()).toBe(200);
    expect(await page.locator('#pg-label').innerText()).toBe('page 1 of 16');
    await page.click('#pg-next');
    expect(await page.locator('#timeline-body tr.row').first().locator('td.seq').innerText()).toMatch(/^#200/);
    await page.selectOption('#f-principal', { label: 'agent-3' });
    expect(await page.locator('#timeline-count').innerText()).toMatch(/^429 of 3,002 records/);
    expect(await page.locator('#sessions-body tr').count()).toBe(40);
    expect(watch).toEqual({ dialogs: [], requests: [], errors: [] });
    await page.close();
  });

  it('renders every session lane of calls whose times span more than a double holds, without a script error', async () => {
    const path = join(dir, 'wide.jsonl');
    const log = await openLog(path);
    // Recorded times are any finite number the caller passed: one session of 45 calls spanning them.
    const times = [-1.7e308, 1.7e308, ...Array.from({ length: 43 }, (_, i) => 1_770_000_000_000 + i)];
    for (const time of times) await log.append(verdict({ session: 'wide', time }));
    await log.close();
    const html = join(dir, 'wide.html');
    writeFileSync(html, (await buildAuditReport([path], key().publicKeys())).html);
    const page = await browser.newPage();
    try {
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(pathToFileURL(html).href);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 }).catch(() => undefined);
      expect(errors).toEqual([]);
      expect(await page.getAttribute('body', 'data-ready')).toBe('true');
      expect(await page.locator('#sessions-body svg.lane rect').count()).toBeGreaterThan(0);
    } finally {
      await page.close();
    }
  }, 60_000);
});
