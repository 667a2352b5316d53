/**
 * Rate-limited evaluations against a local Redis: evaluations/s and p50/p99 with 1 and 50
 * concurrent callers, one EVALSHA per evaluation (counted from Redis' own command stats).
 * Needs Redis at KAVACH_BENCH_REDIS_URL (default redis://127.0.0.1:6379). Run: npx tsx bench/redis.ts
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Gate, KeyPair, type ActionContext } from '../dist/index.js';
import { keyPairSigner, keysVerifier, RedisInvalidationBus, RedisRateStore, RedisSessionStore } from '../dist/redis/index.js';
import { machine, percentile, printTable } from './util.ts';

const URL = process.env.KAVACH_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const policy = {
  policy: [
    {
      name: 'agent tools',
      effect: 'permit',
      conditions: [{ identity_kind: 'agent' }, { action: 'tool_*' }, { rate_limit: { max: 1_000_000_000, window: '1h' } }],
    },
  ],
};

/** Mostly refused: 100 calls per hour per principal+action, 64 principal/action pairs. */
const tightPolicy = {
  policy: [
    {
      name: 'tight tools',
      effect: 'permit',
      conditions: [{ identity_kind: 'agent' }, { action: 'tool_*' }, { rate_limit: { max: 100, window: '1h' } }],
    },
  ],
};

function contexts(withSession: boolean): ActionContext[] {
  return Array.from({ length: 64 }, (_, i) => ({
    principalId: `agent-${i % 16}`,
    principalKind: 'agent',
    actionName: `tool_${i % 4}`,
    params: { i },
    ...(withSession ? { sessionId: `s-${i % 16}`, ip: '10.0.0.1' } : {}),
  }));
}

interface Run {
  perSecond: number;
  p50us: number;
  p99us: number;
  permitted: number;
  unavailable: number;
  evalshaPerEval: number;
}

async function evalshaCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

/** `callers` loops, each awaiting its own evaluations back to back, for `total` evaluations in all. */
async function run(gate: Gate, ctxs: ActionContext[], callers: number, total: number, admin: Redis): Promise<Run> {
  const samples: number[] = [];
  let permitted = 0;
  let unavailable = 0;
  let next = 0;
  const before = await evalshaCalls(admin);
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = process.hrtime.bigint();
        const v = await gate.evaluate(ctxs[i % ctxs.length] as ActionContext);
        samples.push(Number(process.hrtime.bigint() - t0) / 1_000);
        if (v.kind === 'permit') permitted++;
        // Redis slower than the 100 ms deadline (another client's big DEL on a shared Redis, a descheduled server).
        else if (v.kind === 'refuse' && v.code === 'STORE_UNAVAILABLE') unavailable++;
        else if (v.kind !== 'refuse' || v.code !== 'RATE_LIMITED') throw new Error(`unexpected verdict: ${JSON.stringify(v)}`);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const after = await evalshaCalls(admin);
  // the INFO call itself is not an EVALSHA; the stats may include other clients' scripts on a shared Redis
  return {
    perSecond: Math.round(total / seconds),
    p50us: percentile(samples, 50),
    p99us: percentile(samples, 99),
    permitted: permitted / total,
    unavailable,
    evalshaPerEval: (after - before) / total,
  };
}

async function pingLatency(admin: Redis, n: number): Promise<{ p50us: number; p99us: number }> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await admin.ping();
    samples.push(Number(process.hrtime.bigint() - t0) / 1_000);
  }
  return { p50us: percentile(samples, 50), p99us: percentile(samples, 99) };
}

/** Publish at one bus until the other's subscriber has it: signing, Redis and verification together. */
async function invalidationLatency(prefix: string, n: number): Promise<{ p50us: number; p99us: number }> {
  const kp = KeyPair.generate();
  const opts = { keyPrefix: prefix, signer: keyPairSigner(kp), verifier: keysVerifier(kp.publicKeys()) };
  const a = new RedisInvalidationBus(URL, opts);
  const b = new RedisInvalidationBus(URL, opts);
  await Promise.all([a.whenSubscribed(), b.whenSubscribed()]);
  const samples: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const got = new Promise<void>((resolve) => {
        const off = b.subscribe(() => {
          off();
          resolve();
        });
      });
      const t0 = process.hrtime.bigint();
      await a.publish({ scope: { type: 'session', sessionId: `s-${i}` }, reason: 'bench', at: Date.now(), origin: 'bench' });
      await got;
      samples.push(Number(process.hrtime.bigint() - t0) / 1_000);
    }
  } finally {
    await a.close();
    await b.close();
  }
  return { p50us: percentile(samples, 50), p99us: percentile(samples, 99) };
}

/** Shared session store: from `invalidate()` at one replica to a refusal at the other. */
async function storeInvalidationLatency(prefix: string, n: number): Promise<{ p50us: number; p99us: number }> {
  const sa = new RedisSessionStore(URL, { keyPrefix: prefix });
  const sb = new RedisSessionStore(URL, { keyPrefix: prefix });
  const a = Gate.fromDict(policy, { stores: { session: sa }, drift: false });
  const b = Gate.fromDict(policy, { stores: { session: sb }, drift: false });
  const samples: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const ctx: ActionContext = { principalId: 'agent-1', principalKind: 'agent', actionName: 'tool_1', sessionId: `inv-${i}` };
      if ((await b.evaluate(ctx)).kind !== 'permit') throw new Error('session not permitted before invalidation');
      const t0 = process.hrtime.bigint();
      await a.invalidate({ type: 'session', sessionId: `inv-${i}` }, 'bench');
      const v = await b.evaluate(ctx);
      samples.push(Number(process.hrtime.bigint() - t0) / 1_000);
      if (v.kind !== 'refuse' || v.code !== 'SESSION_INVALID') throw new Error(`replica b did not refuse: ${JSON.stringify(v)}`);
    }
  } finally {
    await a.close();
    await b.close();
    await sa.close();
    await sb.close();
  }
  return { p50us: percentile(samples, 50), p99us: percentile(samples, 99) };
}

async function cleanup(admin: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [nextCursor, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    cursor = nextCursor;
    if (keys.length > 0) await admin.unlink(...keys);
  } while (cursor !== '0');
}

export async function benchRedis(total = 40_000): Promise<Record<string, Run | { p50us: number; p99us: number }>> {
  const admin = new Redis(URL);
  const prefix = `kavach-bench:${randomBytes(4).toString('hex')}:`;
  const rate = new RedisRateStore(URL, { keyPrefix: prefix });
  const session = new RedisSessionStore(URL, { keyPrefix: prefix });
  const rateGate = Gate.fromDict(policy, { stores: { rate }, drift: false });
  const fullGate = Gate.fromDict(policy, { stores: { rate, session }, drift: false });
  const tightGate = Gate.fromDict(tightPolicy, { stores: { rate }, drift: false });
  try {
    const plain = contexts(false);
    await run(rateGate, plain, 1, 5_000, admin); // warm up: script loaded, JIT warm
    const ping = await pingLatency(admin, 5_000);
    const one = await run(rateGate, plain, 1, total, admin);
    const fifty = await run(rateGate, plain, 50, total, admin);
    const withSession = contexts(true);
    await run(fullGate, withSession, 1, 2_000, admin);
    const sessionOne = await run(fullGate, withSession, 1, total / 2, admin);
    const limited = await run(
      tightGate,
      plain.map((c, i) => ({ ...c, principalId: `agent-${i}` })),
      1,
      total / 2,
      admin,
    );
    const invalidation = await invalidationLatency(prefix, 50);
    const storeInvalidation = await storeInvalidationLatency(prefix, 500);
    return { ping, one, fifty, sessionOne, limited, invalidation, storeInvalidation };
  } finally {
    await rateGate.close();
    await fullGate.close();
    await tightGate.close();
    await rate.close();
    await session.close();
    await cleanup(admin, prefix);
    admin.disconnect();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchRedis();
  const row = (label: string, x: Run): [string, string][] => [
    [`${label}: evaluations/s`, x.perSecond.toLocaleString('en-US')],
    [`${label}: latency p50 / p99`, `${(x.p50us / 1000).toFixed(3)} ms / ${(x.p99us / 1000).toFixed(3)} ms`],
    [`${label}: EVALSHA per evaluation`, x.evalshaPerEval.toFixed(2)],
    [`${label}: share permitted`, `${(x.permitted * 100).toFixed(0)}%${x.unavailable ? ` (${x.unavailable} STORE_UNAVAILABLE)` : ''}`],
  ];
  const ping = r.ping as { p50us: number; p99us: number };
  const ms = (x: { p50us: number; p99us: number }) => `${(x.p50us / 1000).toFixed(3)} ms / ${(x.p99us / 1000).toFixed(3)} ms`;
  printTable(`redis: rate-limited evaluations, RedisRateStore at ${URL} (${machine()})`, [
    ['ioredis PING round trip p50 / p99 (floor)', `${(ping.p50us / 1000).toFixed(3)} ms / ${(ping.p99us / 1000).toFixed(3)} ms`],
    ...row('1 caller', r.one as Run),
    ...row('50 callers', r.fifty as Run),
    ...row('1 caller + RedisSessionStore (2 round trips)', r.sessionOne as Run),
    ...row('1 caller, mostly RATE_LIMITED (max 100/h)', r.limited as Run),
    ['invalidate at A → refused at B, shared session store, p50 / p99', ms(r.storeInvalidation as { p50us: number; p99us: number })],
    ['signed bus message, publish → delivered, p50 / p99 (hybrid)', ms(r.invalidation as { p50us: number; p99us: number })],
  ]);
}
