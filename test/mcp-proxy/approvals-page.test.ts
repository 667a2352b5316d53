import { afterEach, describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { escapeHtml } from '../../src/mcp-proxy/approvals/web-page.ts';
import { serveApprovalsPage, type ApprovalsPage } from '../../src/mcp-proxy/approvals/web-server.ts';
import { parseConfig } from '../../src/mcp-proxy/config.ts';

const POLICY = `
[[policy]]
name = "refunds"
description = "big refunds"
effect = "approve"
conditions = [ { action = "pay.refund" } ]
approval = { approvers = ["role:finance"] }
`;
const FIN = 'finance-lead-token-0123456789';
const OPS = 'ops-person-token-0123456789';
const XSS = '<img src=x onerror="alert(1)"></pre><script>alert(2)</script>';

describe('the approvals page (HTTP level)', () => {
  let page: ApprovalsPage | undefined;
  let gate: Gate;
  afterEach(async () => {
    await page?.close();
    await gate?.close();
  });

  async function start(params: Record<string, unknown> = { amount: 900, memo: XSS }): Promise<{ url: string; origin: string; id: string }> {
    gate = Gate.fromToml(POLICY);
    const approvals = parseConfig({
      gate: { policy: 'p.toml' },
      servers: { pay: { command: 'x' } },
      approvals: {
        listen: '127.0.0.1:0',
        approvers: [
          { token: FIN, principal_id: 'fin', roles: ['finance'] },
          { token: OPS, principal_id: 'ops' },
        ],
      },
    }).approvals;
    page = await serveApprovalsPage(
      () => gate,
      approvals,
      () => undefined,
    );
    const v = await gate.evaluate({
      principalId: 'bot',
      principalKind: 'agent',
      actionName: 'pay.refund',
      params,
    });
    if (v.kind !== 'refuse' || !v.approval) throw new Error('expected APPROVAL_REQUIRED');
    return { url: page.url, origin: page.url.replace(/\/$/, ''), id: v.approval.id };
  }

  const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString();
  const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

  async function signIn(url: string, origin: string, token = FIN): Promise<{ cookie: string; csrf: string; html: string }> {
    const res = await fetch(`${url}login`, { method: 'POST', redirect: 'manual', headers: { ...FORM, origin }, body: form({ token }) });
    expect(res.status).toBe(303);
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(';')[0] as string;
    const html = await (await fetch(url, { headers: { cookie } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
    expect(csrf).toBeTruthy();
    return { cookie, csrf, html };
  }

  it('shows the login form to strangers, under a CSP that allows no script', async () => {
    const { url } = await start();
    const res = await fetch(url);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('script-src');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html).toContain('action="/login"');
    expect(html).not.toContain('pay.refund');
  });

  it('signs an approver in; shows pending requests with their arguments as text only', async () => {
    const { url, origin, id } = await start();
    const { html } = await signIn(url, origin);
    expect(html).toContain(id);
    expect(html).toContain('big refunds');
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>');
    expect(html).toContain(escapeHtml(JSON.stringify(XSS)).slice(1, 20));
  });

  it('shows bidi overrides and invisible characters from the call and the approver as escapes', async () => {
    const { url, origin, id } = await start({ path: '/home/alice/\u202Ecb.hs\u202C/notes.txt', memo: 'a\u200Bb' });
    const { cookie } = await signIn(url, origin);
    const pending = await (await fetch(url, { headers: { cookie } })).text();
    expect(pending).not.toMatch(/[\u202E\u202C\u200B]/);
    expect(pending).toContain('/home/alice/\\u202ecb.hs\\u202c/notes.txt');
    expect(pending).toContain('a\\u200bb');
    await fetch(`${url}decide`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...FORM, authorization: `Bearer ${FIN}` },
      body: form({ id, decision: 'deny', note: 'see \u202Etxt.exe' }),
    });
    expect((await gate.approvals.get(id))?.status).toBe('denied');
    const decided = await (await fetch(url, { headers: { cookie } })).text();
    expect(decided).not.toContain('\u202E');
    expect(decided).toContain('deny by fin: see \\u202etxt.exe');
  });

  it('refuses a wrong token', async () => {
    const { url, origin } = await start();
    const res = await fetch(`${url}login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...FORM, origin },
      body: form({ token: 'x'.repeat(30) }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('decides with the session CSRF token; without it, with another origin or with none, nothing is decided', async () => {
    const { url, origin, id } = await start();
    const { cookie, csrf } = await signIn(url, origin);
    const post = (headers: Record<string, string>, fields: Record<string, string>) =>
      fetch(`${url}decide`, { method: 'POST', redirect: 'manual', headers: { ...FORM, cookie, ...headers }, body: form(fields) });
    expect((await post({ origin }, { id, decision: 'grant' })).status).toBe(403);
    expect((await post({ origin }, { id, decision: 'grant', csrf: 'forged' })).status).toBe(403);
    expect((await post({ origin: 'http://evil.example' }, { id, decision: 'grant', csrf })).status).toBe(403);
    expect((await post({}, { id, decision: 'grant', csrf })).status).toBe(403);
    expect((await gate.approvals.get(id))?.status).toBe('pending');
    const ok = await post({ origin }, { id, decision: 'grant', csrf, note: 'approved <b>here</b>' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toContain('done=grant');
    const after = await gate.approvals.get(id);
    expect(after?.status).toBe('granted');
    expect(after?.decisions[0]).toMatchObject({ approver: { id: 'fin', kind: 'user', roles: ['finance'] }, note: 'approved <b>here</b>' });
  });

  it('says why a decision did not count (not an approver)', async () => {
    const { url, origin, id } = await start();
    const { cookie, csrf } = await signIn(url, origin, OPS);
    const res = await fetch(`${url}decide`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...FORM, cookie, origin },
      body: form({ id, decision: 'grant', csrf }),
    });
    expect(res.headers.get('location')).toContain('problem=NOT_AN_APPROVER');
    const html = await (await fetch(new URL(res.headers.get('location') as string, url), { headers: { cookie } })).text();
    expect(html).toContain('not among the approvers');
    expect((await gate.approvals.get(id))?.status).toBe('pending');
  });

  it('takes a bearer token without a browser session (no cookie, no CSRF)', async () => {
    const { url, id } = await start();
    const res = await fetch(`${url}decide`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...FORM, authorization: `Bearer ${FIN}` },
      body: form({ id, decision: 'deny', note: 'no' }),
    });
    expect(res.status).toBe(303);
    expect((await gate.approvals.get(id))?.status).toBe('denied');
  });

  it('refuses another Host (DNS rebinding) and signs out', async () => {
    const { url, origin } = await start();
    const { port } = new URL(url);
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', headers: { host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
    const { cookie, csrf } = await signIn(url, origin);
    const out = await fetch(`${url}logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...FORM, cookie, origin },
      body: form({ csrf }),
    });
    expect(out.status).toBe(303);
    expect(await (await fetch(url, { headers: { cookie } })).text()).toContain('action="/login"');
  });
});
