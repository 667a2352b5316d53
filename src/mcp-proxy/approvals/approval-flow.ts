import { ApprovalError, type ApprovalRequest } from '../../engine/approvals/types.ts';
import type { ActionContext, Principal } from '../../engine/context.ts';
import { formatDuration } from '../../engine/duration.ts';
import type { RefuseVerdict, Verdict } from '../../engine/verdict.ts';
import type { ProxySession, ProxyShared } from '../proxy-state.ts';
import type { CallSignal } from '../upstream-call.ts';
import { couldDecide, humanAtClient } from './approvers.ts';
import { approvalQuestion, readAnswer } from './elicitation.ts';

/** How often a held call tells a client that gave a progress token that it is still waiting. */
export const PROGRESS_EVERY_MS = 10_000;

/** One tools/call refused APPROVAL_REQUIRED, as the channels need it. */
export interface ApprovalCall {
  session: ProxySession;
  /** The call as the gate saw it: evaluated again, unchanged, once decided. */
  ctx: ActionContext;
  /** The tool's name as the client knows it (`fs__write_file`). */
  toolName: string;
  signal: CallSignal;
  progressToken: unknown;
  sendNotification: (n: never) => Promise<void>;
}

/** What the call is answered with: a verdict (a permit to forward, or a refusal) and, for a refusal, what else the caller should know. */
export interface Settlement {
  verdict: Verdict;
  /** Appended to the refusal's text: how to decide a request still pending, or why it lapsed. */
  note?: string;
}

type PendingRefusal = RefuseVerdict & { approval: { id: string; expiresAt: number } };

/**
 * The MCP proxy's side of DESIGN §11: a call that needs a person is asked of the client's user
 * (elicitation), else held while it is decided elsewhere (`kavach approvals`, the web page), then
 * evaluated again — a grant permits exactly this call, a denial refuses it APPROVAL_DENIED — or
 * answered APPROVAL_REQUIRED with how to decide it. Anything going wrong leaves the call refused.
 */
export class ApprovalChannels {
  /** The approvals web page, once it listens (named in the answer to a call still pending). */
  pageUrl: string | undefined;

  constructor(private readonly shared: ProxyShared) {}

  async settle(call: ApprovalCall, refused: PendingRefusal): Promise<Settlement> {
    const { gate, config, log } = this.shared;
    const id = refused.approval.id;
    if (call.signal.aborted) return { verdict: refused };
    // The client's cancellation ends the question and the wait (its answer is not read anyway).
    const stop = new AbortController();
    const onCancel = (): void => stop.abort(new Error('the call was cancelled'));
    call.signal.addEventListener('abort', onCancel);
    const progress = this.progress(call, id);
    const started = Date.now();
    try {
      let request = await gate.approvals.get(id);
      if (request === undefined) return { verdict: refused };
      const human = humanAtClient(config.approvals, call.session.principal, config.identity);
      if (request.status === 'pending' && config.approvals.elicit && supportsElicitation(call.session)) {
        // Over HTTP a token is often a program (a CI bot, an agent service) that would answer the
        // question for itself: its client is asked only when its entry names the person there.
        if (call.session.transport === 'tcp' && (call.session.principal as { approver?: string }).approver === undefined)
          log(
            `approval ${id}: not asking the HTTP client: its [[http.clients]] entry names no approver (the person at that client); decide it elsewhere`,
          );
        else if (couldDecide(gate, request, human)) request = await this.elicit(call, request, human, stop.signal);
        // Else the client could ask but its person's answer would not count: say so, or the
        // operator who set `elicit = true` only sees the call wait out its hold.
        else
          log(
            `approval ${id}: not asking the client's user: '${human.id}' may not decide policy '${request.policy}' (the caller, or not among its approvers; [approvals] client_approver names the person at the client)`,
          );
      }
      const holdLeft = started + config.approvals.holdMs - Date.now();
      if (request.status === 'pending' && holdLeft > 0)
        request = await gate.approvals.wait(id, { timeoutMs: holdLeft, signal: stop.signal });
      return await this.outcome(call, refused, request);
    } catch (err) {
      if (!stop.signal.aborted) log(`approval ${id}: ${(err as Error)?.message ?? String(err)}; the call stays refused`);
      return { verdict: refused };
    } finally {
      progress.stop();
      call.signal.removeEventListener('abort', onCancel);
      stop.abort();
    }
  }

  /** How a person decides a pending request, for the answer to the call. */
  howToDecide(id: string): string {
    const config = this.shared.config.file ?? 'kavach.toml';
    const page = this.pageUrl !== undefined ? `, or on the approvals page ${this.pageUrl}` : '';
    return `Ask a person to decide it: \`kavach approvals grant ${id} --config ${quoteArg(config)}\` (or \`deny\`)${page}; then call again with the same arguments.`;
  }

  /**
   * Asks the client's user, while watching for a decision made elsewhere meanwhile: whichever
   * comes first settles it. The question stays open until the request would lapse (the person is
   * right there); a client that cannot answer lets the call fall through to the hold.
   */
  private async elicit(call: ApprovalCall, request: ApprovalRequest, human: Principal, signal: AbortSignal): Promise<ApprovalRequest> {
    const { gate, log } = this.shared;
    const id = request.id;
    const patience = Math.max(1, request.expiresAt - Date.now());
    const asking = linked(signal);
    const watching = linked(signal);
    const answered = call.session.server
      .elicitInput(approvalQuestion(request, call.toolName), { signal: asking.signal, timeout: patience })
      .then(
        (result) => ({ kind: 'answer' as const, result }),
        (error: unknown) => ({ kind: 'failed' as const, error }),
      );
    const elsewhere = gate.approvals.wait(id, { timeoutMs: patience, signal: watching.signal }).then(
      (found) => ({ kind: 'decided' as const, found }),
      (error: unknown) => ({ kind: 'failed' as const, error }),
    );
    try {
      const first = await Promise.race([answered, elsewhere]);
      if (first.kind === 'decided') return first.found;
      if (first.kind === 'failed') {
        signal.throwIfAborted();
        log(
          `approval ${id}: could not ask the client (${(first.error as Error)?.message ?? String(first.error)}); holding the call instead`,
        );
        return (await gate.approvals.get(id)) ?? request;
      }
      const answer = readAnswer(first.result);
      try {
        return await gate.approvals.decide(id, { approver: human, ...answer });
      } catch (err) {
        // Decided elsewhere first, lapsed, or (after a reload) not theirs to decide: the hold sees to it.
        if (!(err instanceof ApprovalError)) throw err;
        log(`approval ${id}: the client's answer did not count (${err.code}: ${err.message})`);
        return (await gate.approvals.get(id)) ?? request;
      }
    } finally {
      asking.abort();
      watching.abort();
    }
  }

  /** Granted or denied: the same call, evaluated again (a grant permits it, a denial refuses it). */
  private async outcome(call: ApprovalCall, refused: PendingRefusal, request: ApprovalRequest): Promise<Settlement> {
    if (request.status === 'granted' || request.status === 'denied') return { verdict: await this.shared.gate.evaluate(call.ctx) };
    if (request.status === 'pending') {
      const waited =
        this.shared.config.approvals.holdMs > 0 ? `Nobody decided within ${formatDuration(this.shared.config.approvals.holdMs)}. ` : '';
      return { verdict: refused, note: `${waited}${this.howToDecide(request.id)}` };
    }
    const why = request.status === 'expired' ? 'expired before anyone decided it' : 'was used up by an identical call';
    return { verdict: refused, note: `Request ${request.id} ${why}; calling again asks again.` };
  }

  /** `notifications/progress` now and every PROGRESS_EVERY_MS while the call waits, when the client gave a token. */
  private progress(call: ApprovalCall, id: string): { stop(): void } {
    const token = call.progressToken;
    if (token === undefined) return { stop: () => undefined };
    let progress = 0;
    const tell = (): void => {
      if (call.signal.aborted) return;
      const params = { progressToken: token, progress: progress++, message: `waiting for approval ${id}` };
      call.sendNotification({ method: 'notifications/progress', params } as never).catch(() => undefined);
    };
    tell();
    const timer = setInterval(tell, PROGRESS_EVERY_MS);
    return { stop: () => clearInterval(timer) };
  }
}

/** Whether the client declared form elicitation (an empty `elicitation: {}` means form). */
function supportsElicitation(session: ProxySession): boolean {
  const caps = session.server.getClientCapabilities()?.elicitation;
  return caps !== undefined && (caps.form !== undefined || caps.url === undefined);
}

function linked(parent: AbortSignal): AbortController {
  const child = new AbortController();
  if (parent.aborted) child.abort(parent.reason);
  else parent.addEventListener('abort', () => child.abort(parent.reason), { once: true });
  return child;
}

/** A path as a shell word (quoted when it needs to be). */
function quoteArg(s: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
