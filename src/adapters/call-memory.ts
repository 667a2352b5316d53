import { hashArgs } from '../engine/canonical-json.ts';
import type { ActionContext } from '../engine/context.ts';
import type { GateDecision } from './shared.ts';

const MEMORY_LIMIT = 1024;

/**
 * One evaluation per tool call. A framework asks "does this call need approval?" and later runs
 * it; asking the gate twice would spend a grant's use on the question and find it gone at the
 * run. So the approval check's decision is handed, once, to the execution check of the same call
 * (the same context: principal, session, environment, call id and arguments), and the request a
 * call id waits on is remembered so the person's answer can name the call. Both are bounded; a
 * lost entry only means the gate is asked again (a new evaluation, never a permit by accident).
 */
export class CallMemory {
  private readonly decisions = new Map<string, GateDecision>();
  private readonly asked = new Map<string, string>();

  /**
   * Keeps a decision for the execution check of the same call. A call that waits for a person is
   * not handed on: by the time it runs the person may have answered, so the run asks the gate
   * again (a framework that runs it without asking again gets a fresh answer, not a stale one).
   */
  hand(ctx: ActionContext, decision: GateDecision): void {
    const waiting =
      !decision.allowed && decision.verdict.kind === 'refuse' && decision.verdict.code === 'APPROVAL_REQUIRED'
        ? decision.verdict.approval
        : undefined;
    if (waiting) {
      if (ctx.callId !== undefined) remember(this.asked, ctx.callId, waiting.id);
      return;
    }
    const key = keyOf(ctx);
    if (key !== undefined) remember(this.decisions, key, decision);
  }

  /** The decision handed for exactly this call, once. */
  take(ctx: ActionContext): GateDecision | undefined {
    const key = keyOf(ctx);
    if (key === undefined) return undefined;
    const found = this.decisions.get(key);
    this.decisions.delete(key);
    return found;
  }

  /** The request the call with this framework call id waits on, when this process saw it asked. */
  requestFor(callId: string): string | undefined {
    return this.asked.get(callId);
  }
}

function keyOf(ctx: ActionContext): string | undefined {
  if (ctx.callId === undefined || ctx.callId === '') return undefined;
  try {
    return hashArgs(ctx);
  } catch {
    return undefined; // not canonical JSON (a non-finite number): the gate refuses it anyway
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MEMORY_LIMIT) map.delete(map.keys().next().value as string);
}

// The memory belongs to the gate: every seam in front of one gate (a tool's needsApproval, its
// execute, ai@7's toolApproval, the helper that records the answer) sees the same calls.
const memories = new WeakMap<object, CallMemory>();

export function callMemoryOf(gate: object): CallMemory {
  let memory = memories.get(gate);
  if (!memory) {
    memory = new CallMemory();
    memories.set(gate, memory);
  }
  return memory;
}
