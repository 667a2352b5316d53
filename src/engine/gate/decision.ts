import type { EvalInput } from '../policy/compile.ts';
import type { RateCharge } from '../stores.ts';
import type { RefuseCode, RefuseVerdict, Verdict } from '../verdict.ts';
import type { ApprovalHold } from './approval-step.ts';

/** What the decision steps hand to the steps after them (signing, the re-check, the audit record). */
export interface Decision {
  verdict: Verdict;
  /** What was charged, so it can be refunded if a later step refuses. */
  charged?: { charges: RateCharge[]; chargeId: string };
  /** What a permit was decided on, so it can be judged again if the policies change before it is handed out. */
  input?: EvalInput;
  /** The approval the verdict rests on (an approve policy matched and its grant was found). */
  approval?: ApprovalHold;
}

/** Where the gate stood when an evaluation began: which policies, how many invalidations. */
export interface Epoch {
  policies: number;
  invalidations: number;
}

export function refuse(evaluationId: string, code: RefuseCode, evaluator: string, reason: string): RefuseVerdict {
  return { kind: 'refuse', evaluationId, code, evaluator, reason };
}
