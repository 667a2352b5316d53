import { Gate } from '../../src/engine/gate.ts';
import type { Principal } from '../../src/engine/context.ts';
import type { GateLike } from '../../src/adapters/shared.ts';

/** Shared by the adapter tests: refunds up to 100 each, at most `max` per hour; lookups always. */
export function refundGate(max = 5): Gate {
  return Gate.fromDict(
    {
      policy: [
        {
          name: 'agent_refunds',
          effect: 'permit',
          conditions: [{ action: 'refund' }, { param_max: { field: 'amount', max: 100 } }, { rate_limit: { max, window: '1h' } }],
        },
        { name: 'lookups', effect: 'permit', conditions: [{ action: 'lookup_order' }] },
      ],
    },
    { drift: false },
  );
}

export const agent: Principal = { id: 'support-bot', kind: 'agent', roles: ['support'] };

/** A gate whose evaluate throws, to prove adapters fail closed. */
export const throwingGate: GateLike = {
  evaluate: async () => {
    throw new Error('gate exploded');
  },
};

/** Counts evaluations by callId, to show a framework that checks twice is charged once. */
export function countingGate(inner: GateLike): GateLike & { calls: Array<string | undefined> } {
  const calls: Array<string | undefined> = [];
  return {
    calls,
    evaluate: (ctx) => {
      calls.push(ctx.callId);
      return inner.evaluate(ctx);
    },
  };
}
