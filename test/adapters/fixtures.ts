import { Gate } from '../../src/engine/gate.ts';
import type { Principal } from '../../src/engine/context.ts';
import type { GateLike } from '../../src/adapters/shared.ts';
import type { GateEvent, OutcomeEvent } from '../../src/engine/ports.ts';
import { fake } from '../engine/screen/fakes.ts';

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

/** A fake AWS access key id (right shape, built from a seed: nothing real). */
export const LEAKED_KEY = fake.awsAccessKey(11);
/** What the leaky tool returns: a config file with a key in it. */
export const LEAKY_CONFIG = `[default]\naws_access_key_id = ${LEAKED_KEY}\nregion = eu-west-1`;

/**
 * A gate that permits `read_config` and screens its results for AWS keys and private keys in
 * `mode`; every event it would audit is pushed to `events`.
 */
export function screeningGate(mode: 'redact' | 'block' | 'report', events: GateEvent[] = []): Gate {
  return Gate.fromDict(
    {
      policy: [{ name: 'reads', effect: 'permit', conditions: [{ action: 'read_config' }] }],
      screen: [{ name: 'no-secrets', actions: ['read_config'], detectors: ['aws_access_key', 'private_key'], mode }],
    },
    { drift: false, audit: { append: async (e) => void events.push(e) } },
  );
}

/** The outcome records among audited events. */
export function outcomes(events: GateEvent[]): OutcomeEvent[] {
  return events.filter((e): e is OutcomeEvent => e.type === 'outcome');
}
