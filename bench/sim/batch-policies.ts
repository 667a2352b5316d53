/**
 * Monte Carlo of batch-root signing policies at 10,000 permits/s on two cores, with the signature
 * time of noble ML-DSA-65 measured by bench/permits.ts ("one root signature, idle worker": p50 ~7 ms,
 * p99 ~33 ms): 1.5 ms + 1.6 ms per round, rounds ~ Geometric(0.196) (~5.1 on average).
 *   A  one signer (what PermitBatcher does by default on a 2-core machine)
 *   C  two signers, each sealing its own batch
 *   B  one root at a time, raced on both workers (first signature wins; the loser runs on)
 * `s` is each worker's speed while both run (the event loop needs part of a core).
 * It asks whether any scheduling gets noble's time-to-permit p99 under 25 ms here (it does not).
 *   npx tsx bench/sim/batch-policies.ts
 */
type Policy = 'A' | 'B' | 'C';
interface Root {
  permits: number[];
  done: boolean;
  attempts: number;
}
interface Worker {
  job: Root | undefined;
  left: number;
}

let seed = 42;
const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
function signMs(): number {
  let rounds = 1;
  while (random() > 0.196) rounds++;
  return 1.5 + 1.6 * rounds;
}

function simulate(policy: Policy, s: number, totalMs = 200_000): { p50: number; p99: number } {
  const dt = 0.05;
  const perMs = 10;
  const workers: Worker[] = [
    { job: undefined, left: 0 },
    { job: undefined, left: 0 },
  ];
  let open: number[] = [];
  let live: Root[] = [];
  const latency: number[] = [];
  for (let t = 0; t < totalMs; t += dt) {
    const arrivals = Math.floor((t + dt) * perMs) - Math.floor(t * perMs);
    for (let i = 0; i < arrivals; i++) open.push(t);
    const speed = workers.every((w) => w.job) ? s : 1;
    for (const w of workers) {
      if (!w.job) continue;
      w.left -= dt * speed;
      if (w.left > 0) continue;
      const root = w.job;
      w.job = undefined;
      if (!root.done) {
        root.done = true;
        for (const a of root.permits) latency.push(t - a);
      }
    }
    live = live.filter((r) => !r.done);
    const start = (w: Worker, root: Root) => {
      w.job = root;
      w.left = signMs();
      root.attempts++;
    };
    for (const [i, w] of workers.entries()) {
      if (w.job) continue;
      const seal = () => {
        const root = { permits: open, done: false, attempts: 0 };
        open = [];
        live.push(root);
        start(w, root);
      };
      if (policy === 'A' && i === 0 && open.length > 0) seal();
      else if (policy === 'C' && open.length > 0) seal();
      else if (policy === 'B') {
        if (live.length === 0 && open.length > 0) seal();
        else if (live.length === 1 && (live[0] as Root).attempts < 2) start(w, live[0] as Root);
      }
    }
  }
  latency.sort((a, b) => a - b);
  const at = (q: number) => latency[Math.floor(latency.length * q)] as number;
  return { p50: at(0.5), p99: at(0.99) };
}

const fmt = (r: { p50: number; p99: number }) => `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`;
process.stdout.write('batch time-to-permit at 10,000/s, noble-like signature times (simulated)\n');
for (const s of [1, 0.8, 0.7]) {
  process.stdout.write(
    `  worker speed ${s} when both run:  A one signer ${fmt(simulate('A', 1))} | C two signers ${fmt(simulate('C', s))} | B raced ${fmt(simulate('B', s))}\n`,
  );
}
