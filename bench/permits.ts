/**
 * Signed-permit throughput through a real Gate.evaluate (the 100-policy set of bench/evaluate.ts,
 * permitted contexts only), on the ML-DSA backend this Node uses; on a Node with native ML-DSA the
 * noble backend is measured too, in a child forced onto it.
 *   per-permit, inline   PermitSigner { pool: false }: one caller, signing on the event loop
 *   per-permit, pool     the default signer (worker pool, one thread per core), 32 concurrent callers
 *   batch                { batch: { maxDelayMs: 4, maxSize: 1024 } }: one root signature alone (the floor of
 *                        time-to-permit), an open-loop load of 10,000 calls/s
 *                        (time-to-permit counted from each call's scheduled start), then closed-loop peak
 *   verify               batch tokens through one PermitVerifier (root cache on), and single-signed ones
 *   npx tsx bench/permits.ts                                   (Node 20/22: noble)
 *   npx -y -p node@24 node --import tsx bench/permits.ts       (Node 24: native, then noble in a child)
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  cryptoBackend,
  Gate,
  InMemoryReplayStore,
  KeyPair,
  PermitSigner,
  PermitVerifier,
  type ActionContext,
  type PermitSignerOptions,
} from '../dist/index.js';
import { contexts, hundredPolicies } from './evaluate.ts';
import { machine, percentile } from './util.ts';

const BATCH_RATE = 10_000;
const BATCH = { maxDelayMs: 4, maxSize: 1024 };

interface Row {
  name: string;
  value: string;
  note?: string;
}

export async function permittedContexts(): Promise<ActionContext[]> {
  const gate = Gate.fromDict(hundredPolicies(), { drift: false });
  const out: ActionContext[] = [];
  for (const ctx of contexts()) {
    const { sessionId: _s, ...rest } = ctx;
    if ((await gate.evaluate(rest)).kind === 'permit') out.push({ ...rest, audience: 'bench' });
  }
  await gate.close();
  return out;
}

export function gateWith(signer: PermitSigner): Gate {
  return Gate.fromDict(hundredPolicies(), { signer, drift: false });
}

/** Event-loop responsiveness: the gaps between ticks of a 2 ms interval timer (a blocked loop shows as one long gap). */
function loopProbe(): () => { p99: number; max: number; cores: number } {
  const gaps: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let last = t0;
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 2);
  return () => {
    clearInterval(timer);
    gaps.push(performance.now() - last);
    const cpu = process.cpuUsage(cpu0);
    // CPU time of all this process's threads over wall time: how many cores the run actually got.
    const cores = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
    return { p99: percentile(gaps, 99), max: percentile(gaps, 100), cores };
  };
}

/** Closed loop: `callers` async callers evaluate back to back for `ms`; permits/s and the event-loop delay meanwhile. */
export async function closedLoop(
  gate: Gate,
  ctxs: ActionContext[],
  callers: number,
  ms: number,
): Promise<{ perSec: number; loop: string; failed: number }> {
  let done = 0;
  let failed = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  const probe = loopProbe();
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let i = c; performance.now() < end; i += callers) {
        const v = await gate.evaluate(ctxs[i % ctxs.length] as ActionContext);
        if (v.kind === 'permit' && v.permit) done++;
        else failed++;
      }
    }),
  );
  const gaps = probe();
  const loop = `2 ms timer gaps p99 ${gaps.p99.toFixed(1)} ms, max ${gaps.max.toFixed(1)} ms; CPU ${gaps.cores.toFixed(2)} cores`;
  return { perSec: done / ((performance.now() - start) / 1000), loop, failed };
}

/** Open loop at `rate` calls/s for `ms`: latency from each call's scheduled start (no coordinated omission). */
export async function openLoop(gate: Gate, ctxs: ActionContext[], rate: number, ms: number, warmMs: number, keep: number) {
  const latencies: number[] = [];
  const kept: { token: string; ctx: ActionContext }[] = [];
  let issued = 0;
  let completed = 0;
  let failed = 0;
  let measuredDone = 0;
  const inflight = new Set<Promise<void>>();
  const t0 = performance.now();
  const measureFrom = t0 + warmMs;
  const stopAt = t0 + warmMs + ms;
  let lastDone = t0;
  const probe = loopProbe();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, stopAt) - t0) / 1000) * rate);
      while (issued < due) {
        const scheduled = t0 + (issued / rate) * 1000;
        const ctx = ctxs[issued % ctxs.length] as ActionContext;
        issued++;
        const p: Promise<void> = gate
          .evaluate(ctx)
          .then((v) => {
            const end = performance.now();
            completed++;
            lastDone = end;
            if (v.kind !== 'permit' || !v.permit) {
              failed++;
              return;
            }
            if (scheduled >= measureFrom) {
              latencies.push(end - scheduled);
              measuredDone++;
              if (kept.length < keep) kept.push({ token: v.permit, ctx });
            }
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      if (now < stopAt) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(inflight);
  const gaps = probe();
  const spanS = (lastDone - measureFrom) / 1000;
  return {
    achieved: measuredDone / spanS,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
    failed,
    completed,
    kept,
    loop: `2 ms timer gaps p99 ${gaps.p99.toFixed(1)} ms, max ${gaps.max.toFixed(1)} ms; CPU ${gaps.cores.toFixed(2)} cores`,
  };
}

async function timeIt(n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) await op(i);
  return n / ((performance.now() - start) / 1000);
}

export async function benchPermits(): Promise<Row[]> {
  const backend = cryptoBackend().mlDsa;
  const kp = KeyPair.generate();
  const ctxs = await permittedContexts();
  const rows: Row[] = [];
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const signer = (opts: Omit<PermitSignerOptions, 'mode'>) => PermitSigner.fromKeyPair(kp, { mode: 'hybrid', ...opts });

  // Per-permit, signing on the event loop: the cap this issue removes.
  {
    const s = signer({ pool: false });
    const gate = gateWith(s);
    const r = await closedLoop(gate, ctxs, 1, 3_000);
    rows.push({ name: `${backend} per-permit inline (hybrid)`, value: `${fmt(r.perSec)} permits/s`, note: r.loop });
  }

  // Per-permit on the worker pool.
  {
    const s = signer({});
    const gate = gateWith(s);
    await Promise.all(ctxs.slice(0, 8).map((c) => gate.evaluate(c))); // workers up
    await closedLoop(gate, ctxs, 8, 800); // JIT warm
    const r = await closedLoop(gate, ctxs, 32, 6_000);
    rows.push({
      name: `${backend} per-permit pool (hybrid, ${s.pool?.size} workers)`,
      value: `${fmt(r.perSec)} permits/s`,
      note: `${r.loop}; ${r.failed} failed`,
    });
    await s.close();
  }

  // Batch: sustained open-loop load, then the closed-loop peak.
  let kept: { token: string; ctx: ActionContext }[] = [];
  {
    const s = signer({ batch: BATCH });
    const gate = gateWith(s);
    await Promise.all(ctxs.slice(0, 8).map((c) => gate.evaluate(c))); // workers up
    // The floor under any batch permit's wait: one root signature, alone on an idle worker.
    // ML-DSA signing repeats until a candidate passes its checks (on average ~5 rounds for
    // ML-DSA-65, geometrically distributed), so its p99 is several times its p50.
    const alone: number[] = [];
    const root = new Uint8Array(37);
    for (let i = 0; i < 300; i++) {
      root[1] = i & 0xff;
      const t = performance.now();
      await s.pool?.signBytes(kp, 'hybrid', 'permit-batch', root);
      alone.push(performance.now() - t);
    }
    rows.push({
      name: `${backend} one root signature, idle worker`,
      value: `p50 ${percentile(alone, 50).toFixed(1)} ms`,
      note: `p99 ${percentile(alone, 99).toFixed(1)} ms, max ${percentile(alone, 100).toFixed(1)} ms over 300: the least a batch permit waits`,
    });
    await openLoop(gate, ctxs, BATCH_RATE / 4, 1_000, 0, 0);
    const r = await openLoop(gate, ctxs, BATCH_RATE, 6_000, 1_000, 20_000);
    kept = r.kept;
    rows.push({
      name: `${backend} batch @ ${fmt(BATCH_RATE)}/s offered (hybrid)`,
      value: `${fmt(r.achieved)} permits/s`,
      note: `time-to-permit p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms; ${r.loop}; ${r.failed} failed`,
    });
    const peak = await closedLoop(gate, ctxs, 512, 4_000);
    rows.push({ name: `${backend} batch peak (hybrid, 512 callers)`, value: `${fmt(peak.perSec)} permits/s`, note: peak.loop });
    await s.close();
  }

  // Verification: batch tokens (root cache on) and single-signed ones.
  {
    const v = new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'bench', replay: new InMemoryReplayStore() });
    const n = kept.length;
    const roots = new Set(kept.map((k) => k.token.slice(k.token.lastIndexOf('.')))).size;
    const rate = await timeIt(n, (i) => v.verify(kept[i]!.token, { action: kept[i]!.ctx.actionName, args: kept[i]!.ctx.params }));
    rows.push({
      name: `${backend} verify batch tokens (hybrid, root cache)`,
      value: `${fmt(rate)} permits/s`,
      note: `${fmt(n)} tokens from ${roots} batches (avg ${(n / roots).toFixed(0)} per root), one verifier with a replay store, one core`,
    });
    const single = signer({ pool: false });
    const one = await single.issue({
      principalId: 'a',
      principalKind: 'agent',
      action: 'x.y',
      args: {},
      evaluationId: 'e',
      audience: 'bench',
      issuedAt: Date.now(),
      expiresAt: Date.now() + 600_000,
    });
    const plain = new PermitVerifier({ keys: kp.publicKeys(), mode: 'hybrid', audience: 'bench' });
    const sRate = await timeIt(300, () => plain.verify(one.token, { action: 'x.y', args: {} }));
    rows.push({ name: `${backend} verify single-signed (hybrid)`, value: `${fmt(sRate)} permits/s`, note: 'one core' });
  }
  return rows;
}

function print(rows: Row[]): void {
  const w = Math.max(...rows.map((r) => r.name.length));
  const v = Math.max(...rows.map((r) => r.value.length));
  for (const r of rows) process.stdout.write(`  ${r.name.padEnd(w)}  ${r.value.padStart(v)}${r.note ? `  (${r.note})` : ''}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now();
  const rows = await benchPermits();
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(rows));
  } else {
    // The machine may be shared: the 1-minute load average says how much of it this run had.
    process.stdout.write(
      `\npermits: signed permits through Gate.evaluate (${machine()}; load average ${loadavg()[0]?.toFixed(1)} at start)\n`,
    );
    print(rows);
    if (cryptoBackend().mlDsa === 'native') {
      const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--json'], {
        env: { ...process.env, KAVACH_CRYPTO_BACKEND: 'noble' },
        encoding: 'utf8',
      });
      if (child.status === 0) print(JSON.parse(child.stdout) as Row[]);
      else process.stderr.write(`noble child failed: ${child.stderr}\n`);
    }
    process.stdout.write(`  (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
}
