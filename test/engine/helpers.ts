import { expect } from 'vitest';
import {
  Gate,
  PolicyError,
  parsePolicyDocument,
  type ActionContext,
  type GateOptions,
  type PermitIssuer,
  type Verdict,
} from '../../src/engine/index.ts';

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

/** allow_all beside one refuse policy with `conditions`: what the refuse policy matches is refused. */
export function guarded(conditions: object[]): Gate {
  return gateOf({
    policies: [
      { name: 'allow_all', effect: 'permit', conditions: [] },
      { name: 'guard', effect: 'refuse', conditions },
    ],
  });
}

/** One permit policy with `conditions`: only what it matches is permitted. */
export function allowing(conditions: object[]): Gate {
  return gateOf({ policies: [{ name: 'allow', effect: 'permit', conditions }] });
}

/** The PolicyError loading `doc` throws; loading, or any other error, fails the test. */
export function loadError(doc: object): PolicyError {
  try {
    parsePolicyDocument(doc);
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('loaded');
}

/** A signer that holds every request until released: lets a test act while a call is mid-evaluation. */
export function heldSigner(): PermitIssuer & { waiting: () => number; release: () => void } {
  const pending: Array<() => void> = [];
  return {
    issue: (r) =>
      new Promise((resolve) => {
        pending.push(() => resolve({ token: `tok-${r.evaluationId}`, id: `jti-${r.evaluationId}` }));
      }),
    waiting: () => pending.length,
    release: () => {
      for (const p of pending.splice(0)) p();
    },
  };
}

/** Resolves once the signer holds `n` requests (turns of the event loop, no timers: robust under load). */
export async function untilHeld(signer: { waiting: () => number }, n = 1): Promise<void> {
  for (let i = 0; i < 10_000 && signer.waiting() < n; i++) await new Promise((r) => setImmediate(r));
  expect(signer.waiting()).toBeGreaterThanOrEqual(n);
}
