import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ApprovalError } from '../../engine/approvals/types.ts';
import type { Principal } from '../../engine/context.ts';
import type { Gate } from '../../engine/gate.ts';
import { StoreUnavailableError } from '../../engine/stores.ts';
import { parseListen, type ApprovalsConfig } from '../config.ts';
import { approverByToken } from './approvers.ts';
import { listPage, loginPage } from './web-page.ts';

const COOKIE = 'kavach_approvals';
const SESSION_TTL_MS = 8 * 3_600_000;
const MAX_SESSIONS = 1_000;
const MAX_FORM_BYTES = 16 * 1024;
const RECENT = 20;

interface WebSession {
  approver: Principal;
  csrf: string;
  expiresAt: number;
}

export interface ApprovalsPage {
  /** `http://host:port/` as bound (the real port when 0 was asked). */
  url: string;
  close(): Promise<void>;
}

/** Who is asking: a signed-in browser (cookie; its forms carry the CSRF token) or a bearer token. */
type Caller = { kind: 'session'; id: string; session: WebSession } | { kind: 'bearer'; approver: Principal };

/**
 * The approvals page (`[approvals] listen`): approvers sign in with their token (an HttpOnly,
 * SameSite=Strict cookie follows) or send it as `Authorization: Bearer`; they see what is waiting,
 * with its arguments, and grant or deny with a note. Against cross-site use: Host must name this
 * server (DNS rebinding), a POST's Origin must be this page, a browser's POST carries its session's
 * CSRF token, and the CSP allows no script at all (the page has none) nor framing.
 */
export async function serveApprovalsPage(
  gate: () => Gate,
  approvals: ApprovalsConfig,
  log: (message: string) => void,
): Promise<ApprovalsPage> {
  const listen = approvals.listen;
  if (listen === undefined) throw new Error('[approvals] listen is not set');
  const { host, port } = parseListen(listen, 'approvals.listen');
  const byToken = approverByToken(approvals);
  const sessions = new Map<string, WebSession>();
  let allowedHosts = new Set<string>();
  let allowedOrigins = new Set<string>();

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`approvals page: ${String(err)}`);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error');
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) return send(res, 403, 'text/plain; charset=utf-8', 'forbidden host');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = `${req.method ?? ''} ${url.pathname}`;
    if (req.method === 'POST') {
      // Only this page may post to it: a missing Origin is accepted only with a bearer token (no browser).
      const origin = req.headers.origin;
      if (origin !== undefined ? !allowedOrigins.has(origin.toLowerCase()) : !hasBearer(req))
        return send(res, 403, 'text/plain; charset=utf-8', 'forbidden origin');
    }
    if (route === 'POST /login') return login(req, res);
    const caller = authenticate(req);
    if (route === 'GET /') {
      if (!caller) return sendHtml(res, 200, (nonce) => loginPage(nonce));
      return showList(res, caller, notice(url));
    }
    if (route === 'POST /decide' || route === 'POST /logout') {
      if (!caller) return sendHtml(res, 401, (nonce) => loginPage(nonce, 'Sign in first.'));
      const form = await readForm(req);
      if (form === undefined) return send(res, 413, 'text/plain; charset=utf-8', 'form too large');
      if (caller.kind === 'session' && !sameSecret(form.get('csrf') ?? '', caller.session.csrf))
        return send(res, 403, 'text/plain; charset=utf-8', 'missing or wrong CSRF token');
      if (route === 'POST /logout') {
        if (caller.kind === 'session') sessions.delete(caller.id);
        res.setHeader('set-cookie', `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
        return redirect(res, '/');
      }
      return decide(res, caller, form);
    }
    return send(res, 404, 'text/plain; charset=utf-8', 'not found');
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    const approver = form === undefined ? undefined : byToken(form.get('token') ?? '');
    if (!approver) return sendHtml(res, 401, (nonce) => loginPage(nonce, 'That token does not belong to an approver.'));
    const id = randomBytes(32).toString('base64url');
    sweep();
    sessions.set(id, { approver, csrf: randomBytes(32).toString('base64url'), expiresAt: Date.now() + SESSION_TTL_MS });
    res.setHeader('set-cookie', `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}`);
    log(`approvals page: ${approver.id} signed in`);
    return redirect(res, '/');
  }

  async function decide(res: ServerResponse, caller: Caller, form: URLSearchParams): Promise<void> {
    const id = form.get('id') ?? '';
    const decision = form.get('decision');
    const note = (form.get('note') ?? '').trim();
    if (decision !== 'grant' && decision !== 'deny') return send(res, 400, 'text/plain; charset=utf-8', 'decision must be grant or deny');
    const approver = caller.kind === 'session' ? caller.session.approver : caller.approver;
    try {
      const after = await gate().approvals.decide(id, { approver, decision, ...(note !== '' ? { note } : {}) });
      log(`approvals page: ${approver.id} ${decision === 'grant' ? 'granted' : 'denied'} ${id}`);
      return redirect(res, `/?done=${decision}&id=${encodeURIComponent(id)}&status=${after.status}`);
    } catch (err) {
      const code =
        err instanceof ApprovalError
          ? err.code
          : err instanceof StoreUnavailableError
            ? 'STORE_UNAVAILABLE'
            : err instanceof TypeError
              ? 'BAD_REQUEST'
              : undefined;
      if (code === undefined) throw err;
      return redirect(res, `/?problem=${code}&id=${encodeURIComponent(id)}`);
    }
  }

  async function showList(res: ServerResponse, caller: Caller, shown: { text: string; problem: boolean } | undefined): Promise<void> {
    const all = await gate().approvals.list();
    const view = {
      approver: caller.kind === 'session' ? caller.session.approver : caller.approver,
      pending: all.filter((r) => r.status === 'pending'),
      recent: all.filter((r) => r.status !== 'pending').slice(0, RECENT),
      ...(caller.kind === 'session' ? { csrf: caller.session.csrf } : {}),
      ...(shown ? { notice: shown } : {}),
    };
    return sendHtml(res, 200, (nonce) => listPage(nonce, view));
  }

  function authenticate(req: IncomingMessage): Caller | undefined {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) {
      const approver = byToken(bearer);
      return approver ? { kind: 'bearer', approver } : undefined;
    }
    const id = cookie(req.headers.cookie, COOKIE);
    const session = id !== undefined ? sessions.get(id) : undefined;
    if (id === undefined || !session) return undefined;
    if (session.expiresAt <= Date.now()) {
      sessions.delete(id);
      return undefined;
    }
    return { kind: 'session', id, session };
  }

  function sweep(): void {
    const now = Date.now();
    for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id);
    // Oldest first (insertion order): a flood of sign-ins cannot grow the map without bound.
    while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const realPort = typeof bound === 'object' && bound ? bound.port : port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const names = new Set([hostPart, 'localhost', '127.0.0.1', '[::1]']);
  allowedHosts = new Set([...names].map((n) => `${n}:${realPort}`.toLowerCase()));
  allowedOrigins = new Set([...names].map((n) => `http://${n}:${realPort}`.toLowerCase()));
  const url = `http://${hostPart}:${realPort}/`;
  return {
    url,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const NOTICES: Record<string, string> = {
  NOT_FOUND: 'No such request.',
  NOT_PENDING: 'It was already decided.',
  EXPIRED: 'It expired before the decision.',
  SELF_APPROVAL: 'Nobody decides their own call.',
  NOT_AN_APPROVER: 'You are not among the approvers its policy names.',
  STORE_UNAVAILABLE: 'The approval store failed; the decision may not be recorded. Try again.',
  BAD_REQUEST: 'That decision was malformed.',
};

/** The message after a decision (from the redirect's query; shown as text). */
function notice(url: URL): { text: string; problem: boolean } | undefined {
  const id = url.searchParams.get('id') ?? '';
  const done = url.searchParams.get('done');
  if (done === 'grant' || done === 'deny')
    return { text: `${done === 'grant' ? 'Granted' : 'Denied'} ${id} (now ${url.searchParams.get('status') ?? '?'}).`, problem: false };
  const problem = url.searchParams.get('problem');
  if (problem !== null && Object.hasOwn(NOTICES, problem)) return { text: `Not decided: ${id}: ${NOTICES[problem]}`, problem: true };
  return undefined;
}

function hasBearer(req: IncomingMessage): boolean {
  return /^Bearer\s+\S+\s*$/i.test(req.headers.authorization ?? '');
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  if (type !== 'application/x-www-form-urlencoded') return new URLSearchParams();
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Headers every answer carries: no script, no framing, no caching, no sniffing, no referrer to other sites. */
function secure(res: ServerResponse, nonce?: string): void {
  const style = nonce !== undefined ? `style-src 'nonce-${nonce}'` : "style-src 'none'";
  res.setHeader('content-security-policy', `default-src 'none'; ${style}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  // same-origin, not no-referrer: under no-referrer a browser posts the form with `Origin: null`.
  res.setHeader('referrer-policy', 'same-origin');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-resource-policy', 'same-origin');
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  secure(res);
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}

function sendHtml(res: ServerResponse, status: number, build: (nonce: string) => string): void {
  const nonce = randomBytes(16).toString('base64');
  secure(res, nonce);
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(build(nonce));
}

function redirect(res: ServerResponse, location: string): void {
  secure(res);
  res.writeHead(303, { location });
  res.end();
}
