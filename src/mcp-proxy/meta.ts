import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { PermitVerdict, Verdict } from '../engine/verdict.ts';
import { forgetRawAnswer } from './raw-answer.ts';
import type { ProxyRefusal } from './refusals.ts';

/**
 * Every rule about `_meta`, in one place. Keys under `dev.kavach/` are Kavach's and only the proxy
 * sets them: they are dropped from whatever a client sends on (a forged permit must never reach a
 * server) and from whatever a server answers (a server must not show the client a verdict Kavach
 * did not give). Then the proxy adds its own: the permit going up, the verdict coming down.
 * Every request whose params come from a client reaches its server through `relayed` (tools/call,
 * on its raw path, through `forwardedToolMeta`), so no path can forget a rule.
 */
const KAVACH_META_PREFIX = 'dev.kavach/';

/** Where a forwarded request carries its signed permit (DESIGN §7); `requirePermit` reads it there. */
export const PERMIT_META_KEY = 'dev.kavach/permit';
/** Where a refusal carries its verdict: a tool result's `_meta`, a JSON-RPC error's `data`. */
export const VERDICT_META_KEY = 'dev.kavach/verdict';
/** Observe mode: what enforcement would have answered, on a result that was let through. */
export const OBSERVED_META_KEY = 'dev.kavach/observed';

export type Meta = Record<string, unknown>;

/** `meta` without Kavach's keys (the same object when it had none). */
function withoutKavachMeta(meta: Meta): Meta {
  let out: Meta | undefined;
  for (const k in meta) {
    if (!k.startsWith(KAVACH_META_PREFIX)) continue;
    out ??= { ...meta };
    delete out[k];
  }
  return out ?? meta;
}

/**
 * W3C Trace Context a client sent, passed on only when it looks like it: an upstream may copy it
 * into headers or logs, so no other type, no control characters, nothing large (20 KB were sent).
 */
const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;
const TRACESTATE_MAX = 512;
const TRACE_KEYS = ['traceparent', 'tracestate'] as const;
const CONTROL = /[\u0000-\u001f\u007f]/;
function passableTrace(key: (typeof TRACE_KEYS)[number], value: unknown): boolean {
  if (typeof value !== 'string') return false;
  return key === 'traceparent' ? TRACEPARENT.test(value) : value.length <= TRACESTATE_MAX && !CONTROL.test(value);
}

/** A client's `_meta` minus Kavach's keys and trace context that does not pass (the same object when nothing went). */
function fromClient(meta: Meta): Meta {
  let out = withoutKavachMeta(meta);
  for (const k of TRACE_KEYS) {
    if (!Object.hasOwn(out, k) || passableTrace(k, out[k])) continue;
    if (out === meta) out = { ...meta };
    delete out[k];
  }
  return out;
}

/** Client → server: the client's `_meta` minus Kavach's keys, plus the permit when the gate gave one. */
export function forwardedParams<P extends { _meta?: Meta }>(params: P, verdict: PermitVerdict | undefined): P {
  const meta = params._meta ? fromClient(params._meta) : undefined;
  if (verdict?.permit === undefined) return meta === params._meta ? params : { ...params, _meta: meta };
  return { ...params, _meta: { ...meta, [PERMIT_META_KEY]: verdict.permit } };
}

/** The progress token a client put in a request's `_meta`, if any. */
export function clientProgressToken(clientMeta: Meta | undefined): unknown {
  return clientMeta?.progressToken;
}

/**
 * tools/call, client → server: as `forwardedParams`, except that the client's progress token is
 * replaced by the one the proxy tracks on the upstream connection, and, when the proxy traces the
 * call, the client's trace context by the proxy's (`traceMeta`): the client's `tracestate` must not
 * ride along with the proxy's `traceparent`. Undefined when nothing is left.
 */
export function forwardedToolMeta(
  clientMeta: Meta | undefined,
  verdict: PermitVerdict,
  upstreamProgressToken: string | undefined,
  traceMeta?: Record<string, string>,
): Meta | undefined {
  let meta: Meta | undefined;
  if (clientMeta) {
    const kept = fromClient(clientMeta);
    for (const k in kept) {
      if (k === 'progressToken' || (traceMeta && (k === 'traceparent' || k === 'tracestate'))) continue;
      (meta ??= {})[k] = kept[k];
    }
  }
  if (traceMeta) for (const k in traceMeta) (meta ??= {})[k] = traceMeta[k];
  if (verdict.permit !== undefined) (meta ??= {})[PERMIT_META_KEY] = verdict.permit;
  if (upstreamProgressToken !== undefined) (meta ??= {}).progressToken = upstreamProgressToken;
  return meta;
}

/** Server → client: a result without Kavach keys the server put in, with the observed verdict in observe mode. */
export function returnedResult<R extends { _meta?: Meta }>(result: R, verdict: PermitVerdict | undefined): R {
  if (result._meta) {
    const meta = withoutKavachMeta(result._meta);
    if (meta !== result._meta) {
      result._meta = meta;
      forgetRawAnswer(result);
    }
  }
  if (verdict?.observed && verdict.observed.kind !== 'permit') {
    result._meta = { ...result._meta, [OBSERVED_META_KEY]: verdict.observed };
    forgetRawAnswer(result);
  }
  return result;
}

/**
 * An upstream's JSON-RPC error without Kavach keys in its data: a gated refusal carries its verdict
 * in `data`, and a server must not be able to make its own error look like one.
 */
export function scrubbedError(err: unknown): unknown {
  if (!(err instanceof McpError) || err.data === null || typeof err.data !== 'object' || Array.isArray(err.data)) return err;
  const data = withoutKavachMeta(err.data as Meta);
  if (data === err.data) return err;
  let empty = true;
  for (const _ in data) {
    empty = false;
    break;
  }
  const out = new McpError(err.code, '', empty ? undefined : data);
  out.message = err.message;
  return out;
}

/** A request the proxy makes of its own (subscribe, list...): only its errors need the rule. */
export function fromUpstream<T>(request: Promise<T>): Promise<T> {
  return request.catch((err: unknown) => {
    throw scrubbedError(err);
  });
}

/**
 * A client's request relayed to a server, through every rule both ways: its params as
 * `forwardedParams`, its result as `returnedResult`, its error as `scrubbedError`.
 */
export async function relayed<P extends { _meta?: Meta }, R extends { _meta?: Meta }>(
  params: P,
  verdict: PermitVerdict | undefined,
  send: (forwarded: P) => Promise<R>,
): Promise<R> {
  return returnedResult(await fromUpstream(send(forwardedParams(params, verdict))), verdict);
}

/** A refusal's verdict, for a tool result's `_meta` or a JSON-RPC error's `data`. */
export function verdictMeta(verdict: Exclude<Verdict, { kind: 'permit' }> | ProxyRefusal): Meta {
  return { [VERDICT_META_KEY]: verdict };
}
