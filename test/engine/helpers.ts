import { Gate, type ActionContext, type GateOptions, type Verdict } from '../../src/engine/index.ts';

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0); // a Thursday, noon UTC

/** A hand-cranked clock for tests. */
export function manualClock(start = T0): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms), set: (ms) => void (t = ms) };
}

export function ctx(overrides: Partial<ActionContext> = {}): ActionContext {
  return { principalId: 'agent-1', principalKind: 'agent', actionName: 'tool.run', ...overrides };
}

/** A one-policy permit set with the given conditions. */
export function permitWith(conditions: unknown[], extra: Record<string, unknown> = {}): { policies: unknown[] } {
  return { policies: [{ name: 'p', effect: 'permit', conditions, ...extra }] };
}

/** A gate with drift off (unless given), on a manual clock. */
export function gateOf(doc: object, opts: GateOptions = {}): Gate {
  return Gate.fromDict(doc, { drift: false, ...opts });
}

export function code(v: Verdict): string {
  return v.kind === 'refuse' ? v.code : v.kind;
}

/** Evaluates and returns 'permit', 'invalidate' or the refusal code. */
export async function outcome(gate: Gate, c: ActionContext | unknown): Promise<string> {
  return code(await gate.evaluate(c as ActionContext));
}
