/**
 * Evaluations per second and latency for a 100-policy set of mixed conditions, in-memory stores,
 * no signing, no audit. Run: npx tsx bench/evaluate.ts
 */
import { Gate, type ActionContext } from '../dist/index.js';
import { machine, percentile, printTable } from './util.ts';

export function hundredPolicies(): object {
  const policies: object[] = [];
  for (let i = 0; i < 100; i++) {
    const action = `tool_${i % 25}`;
    switch (i % 5) {
      case 0:
        policies.push({
          name: `p${i}`,
          effect: 'permit',
          conditions: [
            { identity_kind: 'agent' },
            { action },
            { param_max: { field: 'amount', max: 1000 + i } },
            { param_in: { field: 'currency', values: ['EUR', 'USD', 'INR'] } },
          ],
        });
        break;
      case 1:
        policies.push({
          name: `p${i}`,
          effect: 'permit',
          conditions: [
            { identity_role: 'ops' },
            { action: `${action}*` },
            { path_within: { field: '/file/path', roots: ['/srv/data', '/tmp/work'] } },
          ],
        });
        break;
      case 2:
        policies.push({
          name: `p${i}`,
          effect: 'permit',
          conditions: [
            { action },
            { url_host_in: { field: 'url', hosts: ['api.example.com', '*.example.org'] } },
            { time_window: '00:00-24:00' },
          ],
        });
        break;
      case 3:
        policies.push({
          name: `p${i}`,
          effect: 'refuse',
          conditions: [
            { action },
            { any_of: [{ param_glob: { field: 'note', pattern: '*DROP TABLE*' } }, { param_max_length: { field: 'note', max: 10 } }] },
            { not: { identity_id: 'trusted-*' } },
          ],
        });
        break;
      default:
        policies.push({
          name: `p${i}`,
          effect: 'permit',
          conditions: [{ identity_kind: ['agent', 'service'] }, { action }, { rate_limit: { max: 1_000_000_000, window: '1h' } }],
        });
    }
  }
  return { policies };
}

export function contexts(): ActionContext[] {
  const out: ActionContext[] = [];
  for (let i = 0; i < 64; i++) {
    out.push({
      principalId: `agent-${i % 8}`,
      principalKind: 'agent',
      roles: ['ops'],
      actionName: `tool_${i % 25}`,
      params: {
        amount: 10 * i,
        currency: i % 3 === 0 ? 'GBP' : 'EUR',
        file: { path: '/srv/data/report.csv' },
        url: 'https://api.example.com/v1',
        note: 'ok',
      },
      sessionId: `s-${i % 8}`,
      ip: '10.0.0.1',
    });
  }
  return out;
}

export async function benchEvaluate(iterations = 400_000): Promise<{ perSecond: number; p50us: number; p99us: number; permits: number }> {
  // A synthetic clock, 100 ms per call: 8 sessions then see ~75 calls a minute each, a real
  // agent's pace, so drift runs its checks without tripping on the benchmark's own speed.
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = () => (now += 100);
  const gate = Gate.fromDict(hundredPolicies(), { clock, drift: { maxSessionAge: false } });
  const ctxs = contexts();
  for (let i = 0; i < 50_000; i++) await gate.evaluate(ctxs[i % ctxs.length] as ActionContext); // warm up
  let permits = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const v = await gate.evaluate(ctxs[i % ctxs.length] as ActionContext);
    if (v.kind === 'permit') permits++;
  }
  const elapsedNs = Number(process.hrtime.bigint() - start);
  const samples: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const t0 = process.hrtime.bigint();
    await gate.evaluate(ctxs[i % ctxs.length] as ActionContext);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  await gate.close();
  return {
    perSecond: Math.round(iterations / (elapsedNs / 1e9)),
    p50us: percentile(samples, 50),
    p99us: percentile(samples, 99),
    permits: permits / iterations,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchEvaluate();
  printTable(`evaluate: 100 mixed policies, in-memory stores, no signing (${machine()})`, [
    ['evaluations/s (one core, sequential)', r.perSecond.toLocaleString('en-US')],
    ['latency p50', `${r.p50us.toFixed(2)} µs`],
    ['latency p99', `${r.p99us.toFixed(2)} µs`],
    ['share permitted', `${(r.permits * 100).toFixed(0)}%`],
  ]);
}
