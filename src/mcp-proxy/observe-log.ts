import type { AuditSink, GateEvent } from '../engine/ports.ts';

/**
 * In observe mode every call is let through, so what enforcement would have refused is easy to
 * miss: the audit log holds it, and this puts each one on the proxy's stderr too (one line, which
 * clients show in their MCP server log). Wraps the gate's audit sink, or stands in for it.
 */
export function reportObserved(sink: AuditSink | undefined, log: (message: string) => void): AuditSink {
  return {
    append(event: GateEvent): Promise<unknown> {
      const line = observedLine(event);
      if (line !== undefined) log(line);
      return sink ? sink.append(event) : Promise.resolve();
    },
  };
}

/** `observe: would refuse fs.write_file (NO_POLICY_MATCH: …); let through (observe_only)`, or undefined. */
export function observedLine(event: GateEvent): string | undefined {
  if (event.type !== 'verdict' || event.observed !== true || event.verdict === 'permit') return undefined;
  const what = event.verdict === 'invalidate' ? 'would invalidate the session of' : 'would refuse';
  const code = event.code ?? 'REFUSED';
  const policy = event.policy !== undefined ? `, policy ${oneLine(event.policy, 80)}` : '';
  const reason = event.reason !== undefined ? `: ${oneLine(event.reason, 300)}` : '';
  return `observe: ${what} ${oneLine(event.action ?? '(no action)', 120)} by ${oneLine(event.principal, 80)} (${code}${policy}${reason}); let through because [gate] observe_only = true`;
}

/** Untrusted text (tool names, reasons) kept to one short, printable line. */
function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
