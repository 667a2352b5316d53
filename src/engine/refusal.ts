import type { OutputBlockedVerdict, Verdict } from './verdict.ts';

/**
 * The one refusal text models see everywhere (adapters, proxy), e.g.
 * `Refused by policy [RATE_LIMITED] policy: 'agent_refunds' allows 5 calls per 1h; retry after 42s.`
 */
export function formatRefusal(verdict: Exclude<Verdict, { kind: 'permit' }> | OutputBlockedVerdict): string {
  if (verdict.kind === 'invalidate') {
    return `Refused by policy [SESSION_INVALID] ${verdict.evaluator}: ${verdict.reason}; the session was invalidated and must be restarted.`;
  }
  const retry =
    'retryAfterMs' in verdict && verdict.retryAfterMs !== undefined
      ? `; retry after ${Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))}s`
      : '';
  return `Refused by policy [${verdict.code}] ${verdict.evaluator}: ${verdict.reason}${retry}.`;
}
