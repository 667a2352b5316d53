/**
 * The approvals page of a running `kavach mcp` in headless Chromium (playwright-core, Debian's
 * chromium): an approver signs in, sees the held call with its arguments shown as text (a hostile
 * argument runs nothing), and grants it; the held call then runs. Outside CI a machine without
 * chromium skips this file; with CI=true it fails.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup,
  FILESYSTEM,
  keygen,
  q,
  REPO,
  runCli,
  startProxy,
  tempDir,
  textOf,
  waitFor,
  write,
  type RunningProxy,
} from './proxy-harness.ts';

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
const ci = process.env.CI === 'true';
const haveChromium = existsSync(CHROMIUM);
const TOKEN = 'alice-approver-token-4f1c9e2b7a';
const XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>';

describe.skipIf(!haveChromium && !ci)('the approvals page in headless chromium', () => {
  let dir: string;
  let root: string;
  let config: string;
  let proxy: RunningProxy;
  let browser: Browser;
  let pageUrl: string;

  beforeAll(async () => {
    dir = tempDir();
    root = join(dir, 'work');
    mkdirSync(join(root, 'scratch'), { recursive: true });
    await keygen(dir);
    write(join(dir, 'policy.toml'), readFileSync(join(REPO, 'policies/fs-approvals.toml'), 'utf8').replaceAll('/home/alice/work', root));
    config = write(
      join(dir, 'kavach.toml'),
      `
[gate]
policy = "policy.toml"
[identity]
principal_id = "alice-laptop"
principal_kind = "agent"
[keys]
path = "keys/secret.key"
[audit]
path = "audit/mcp.jsonl"
[approvals]
listen = "127.0.0.1:0"
[[approvals.approvers]]
token = "\${APPROVER_TOKEN}"
principal_id = "alice"
[servers.fs]
command = ${q(process.execPath)}
args = [${q(FILESYSTEM)}, ${q(root)}]
`,
    );
    proxy = await startProxy(config, { env: { APPROVER_TOKEN: TOKEN } });
    pageUrl = await waitFor('the approvals page', () => /approvals page on (http:\/\/\S+)/.exec(proxy.stderr())?.[1]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    cleanup(dir);
  });

  it('an approver signs in, reads the held call (hostile arguments as text) and grants it: the call runs', async () => {
    const path = join(root, 'from-the-page.txt');
    let id = '';
    const held = new Promise<void>((resolve) => {
      void proxy.client
        .callTool({ name: 'fs__write_file', arguments: { path, content: XSS } }, undefined, {
          onprogress: (p) => {
            const found = /waiting for approval (\S+)/.exec(p.message ?? '')?.[1];
            if (found && !id) {
              id = found;
              resolve();
            }
          },
          resetTimeoutOnProgress: true,
        })
        .then((r) => (result = r));
    });
    let result: unknown;
    await held;

    const page = await browser.newPage();
    const watch = { dialogs: [] as string[], errors: [] as string[], elsewhere: [] as string[] };
    page.on('dialog', (d) => {
      watch.dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => watch.errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') watch.errors.push(m.text());
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(pageUrl)) watch.elsewhere.push(r.url());
    });
    const first = await page.goto(pageUrl);
    expect(first?.headers()['content-security-policy']).toContain("default-src 'none'");
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    const section = page.locator(`section[data-request="${id}"]`);
    await section.waitFor();
    expect(await page.locator('#approver').innerText()).toBe('alice');
    expect(await section.locator('h3').innerText()).toBe('fs.write_file');
    expect(await section.locator('.reason').innerText()).toContain('a write outside scratch/');
    // The hostile argument is shown as what it is, and nothing of it became markup.
    const args = JSON.parse(await section.locator('pre.args').innerText()) as Record<string, string>;
    expect(args).toEqual({ path, content: XSS });
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(0);

    await section.locator('textarea[name=note]').fill('checked in the browser');
    await section.locator('button.grant').click();
    await page.locator('#notice').waitFor();
    expect(await page.locator('#notice').innerText()).toContain(`Granted ${id}`);
    expect(await page.locator(`section[data-request="${id}"]`).count()).toBe(0);
    expect(await page.locator('#recent').innerText()).toContain('grant by alice: checked in the browser');
    expect(watch).toEqual({ dialogs: [], errors: [], elsewhere: [] });
    await page.close();

    await waitFor('the held call to finish', () => result);
    expect((result as { isError?: boolean }).isError, textOf(result)).toBeFalsy();
    expect(readFileSync(path, 'utf8')).toBe(XSS);
  });

  it('another site cannot decide for a signed-in approver (SameSite cookie, Origin check, CSRF token)', async () => {
    const path = join(root, 'cross-site.txt');
    let id = '';
    const held = new Promise<void>((resolve) => {
      proxy.client
        .callTool({ name: 'fs__write_file', arguments: { path, content: 'x' } }, undefined, {
          onprogress: (p) => {
            const found = /waiting for approval (\S+)/.exec(p.message ?? '')?.[1];
            if (found && !id) {
              id = found;
              resolve();
            }
          },
          resetTimeoutOnProgress: true,
        })
        .catch(() => undefined);
    });
    await held;
    // A page on another origin (localhost is another site than 127.0.0.1) that posts a grant at once.
    const evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<form id="f" method="post" action="${pageUrl}decide"><input name="id" value="${id}"><input name="decision" value="grant"></form>
<script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(pageUrl);
      await page.fill('#token', TOKEN);
      await page.click('button[type=submit]');
      await page.locator('h1').waitFor();
      // Without the page's CSRF token, from the page's own origin: refused.
      const sameOrigin = await page.request.post(`${pageUrl}decide`, {
        form: { id, decision: 'grant' },
        headers: { origin: pageUrl.replace(/\/$/, '') },
        maxRedirects: 0,
      });
      expect(sameOrigin.status()).toBe(403);
      const answer = await page
        .goto(evilUrl)
        .then(() => page.waitForURL(`${pageUrl}decide`))
        .then(() => page.content());
      expect(answer).toContain('forbidden origin');
    } finally {
      await context.close();
      await new Promise<void>((r) => evil.close(() => r()));
    }
    const show = await runCli(['approvals', 'show', id, '--config', config], { APPROVER_TOKEN: TOKEN });
    expect(show.stdout, show.stderr).toMatch(/status\s+pending/);
    expect(existsSync(path)).toBe(false);
  });

  it('the audit log verifies afterwards, with the page decision in it', async () => {
    await proxy.close();
    const log = join(dir, 'audit/mcp.jsonl');
    const verify = await runCli(['audit', 'verify', log, '--keys', join(dir, 'keys/public.json')]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const shown = await runCli(['audit', 'show', log, '--type', 'approval', '--json']);
    expect(shown.stdout).toContain('"note":"checked in the browser"');
  });
});
