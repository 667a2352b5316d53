import type { ApprovalRequest } from '../../engine/approvals/types.ts';
import type { Principal } from '../../engine/context.ts';
import { terminalJson, visibleLines } from '../../engine/terminal-text.ts';

/**
 * The approvals page, rendered on the server with no script at all. Every value that came from a
 * call, a policy or a person goes through `html`'s escaping: the page shows it as text, so a
 * hostile argument (`<img onerror=...>`) is only ever read, never run. Before that, control, bidi
 * and invisible characters become `\u` escapes (as in the CLI and the elicitation dialog): a
 * browser would otherwise reorder or hide them, so that `/home/alice/\u202Ecb.hs\u202C` reads `sh.bc`.
 */
class Raw {
  constructor(readonly text: string) {}
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** A template whose interpolations are escaped, unless they are markup this module built. */
function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0] as string;
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] as string);
  });
  return new Raw(out);
}

function render(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === undefined || v === null || v === false) return '';
  return escapeHtml(visibleLines(String(v)));
}

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}
header{background:#1b1f24;color:#fff;padding:.8rem 1.5rem;display:flex;justify-content:space-between;align-items:center}
header form{margin:0}main{max-width:60rem;margin:1.5rem auto;padding:0 1rem}
section.request{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:1rem 1.25rem;margin-bottom:1rem}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.2rem .8rem;margin:.5rem 0}dt{color:#57606a}dd{margin:0;overflow-wrap:anywhere}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6rem;overflow:auto;max-height:24rem;white-space:pre-wrap;overflow-wrap:anywhere}
textarea{width:100%;box-sizing:border-box}button{font:inherit;padding:.35rem 1rem;margin-right:.5rem;cursor:pointer}
button.grant{background:#1f883d;color:#fff;border:1px solid #1a7f37}button.deny{background:#cf222e;color:#fff;border:1px solid #a40e26}
p.notice{padding:.6rem 1rem;border-radius:6px;background:#ddf4ff;border:1px solid #54aeff}p.problem{background:#ffebe9;border-color:#ff8182}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;overflow-wrap:anywhere}
`;

function page(title: string, nonce: string, body: Raw): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="same-origin"><title>${title}</title><style nonce="${nonce}">${new Raw(STYLE)}</style></head>
<body>${body}</body></html>`.text;
}

export function loginPage(nonce: string, problem?: string): string {
  return page(
    'Kavach approvals: sign in',
    nonce,
    html`<header><strong>Kavach approvals</strong></header><main>
${problem !== undefined ? html`<p class="notice problem" role="alert">${problem}</p>` : ''}
<form method="post" action="/login">
<p><label for="token">Approver token</label></p>
<p><input id="token" name="token" type="password" autocomplete="current-password" required size="50"></p>
<p><button type="submit">Sign in</button></p>
</form></main>`,
  );
}

export interface ListView {
  approver: Principal;
  /** Absent for bearer-token requests (no session, no forms). */
  csrf?: string;
  pending: ApprovalRequest[];
  recent: ApprovalRequest[];
  notice?: { text: string; problem: boolean };
}

export function listPage(nonce: string, view: ListView): string {
  const who = `${view.approver.id}${view.approver.roles?.length ? ` (roles: ${view.approver.roles.join(', ')})` : ''}`;
  return page(
    'Kavach approvals',
    nonce,
    html`<header><strong>Kavach approvals</strong><span>Signed in as <span id="approver">${who}</span>
${view.csrf !== undefined ? html` <form method="post" action="/logout"><input type="hidden" name="csrf" value="${view.csrf}"><button type="submit">Sign out</button></form>` : ''}</span></header>
<main>
${view.notice ? html`<p class="notice${view.notice.problem ? ' problem' : ''}" role="status" id="notice">${view.notice.text}</p>` : ''}
<h1>Waiting for a decision (${view.pending.length})</h1>
${view.pending.length === 0 ? html`<p id="none">Nothing is waiting. <a href="/">Refresh</a></p>` : view.pending.map((r) => requestSection(r, view.csrf))}
<h2>Recently decided</h2>
${
  view.recent.length === 0
    ? html`<p>None yet.</p>`
    : html`<table id="recent"><thead><tr><th>request</th><th>status</th><th>action</th><th>caller</th><th>decisions</th></tr></thead><tbody>
${view.recent.map((r) => html`<tr><td>${r.id}</td><td>${r.status}</td><td>${r.action}</td><td>${r.principal.id}</td><td>${r.decisions.map((d) => `${d.decision} by ${d.approver.id}${d.note !== undefined ? `: ${d.note}` : ''}`).join('; ')}</td></tr>`)}
</tbody></table>`
}
</main>`,
  );
}

function requestSection(r: ApprovalRequest, csrf: string | undefined): Raw {
  return html`<section class="request" data-request="${r.id}">
<h3>${r.action}</h3>
<dl>
<dt>why</dt><dd class="reason">${r.reason} (policy '${r.policy}')</dd>
<dt>caller</dt><dd class="caller">${r.principal.id} (${r.principal.kind})</dd>
${r.audience !== undefined ? html`<dt>server</dt><dd>${r.audience}</dd>` : ''}
${r.resource !== undefined ? html`<dt>resource</dt><dd>${r.resource}</dd>` : ''}
<dt>session</dt><dd>${r.sessionId ?? '-'}</dd>
<dt>asked</dt><dd>${new Date(r.createdAt).toISOString()}</dd>
<dt>open until</dt><dd>${new Date(r.expiresAt).toISOString()}</dd>
<dt>request</dt><dd class="id">${r.id}</dd>
${r.decisions.length > 0 ? html`<dt>decisions</dt><dd>${r.decisions.map((d) => `${d.decision} by ${d.approver.id}`).join('; ')}</dd>` : ''}
</dl>
<p>Arguments (what the approver may see; redacted fields are left out):</p>
<pre class="args">${r.args === undefined ? '(not kept)' : terminalJson(r.args, 2)}</pre>
${
  csrf !== undefined
    ? html`<form method="post" action="/decide">
<input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="id" value="${r.id}">
<p><label>Note (optional, recorded in the audit log)<br><textarea name="note" rows="2" maxlength="4096"></textarea></label></p>
<p><button class="grant" type="submit" name="decision" value="grant">Grant this call</button><button class="deny" type="submit" name="decision" value="deny">Deny</button></p>
</form>`
    : ''
}
</section>`;
}
