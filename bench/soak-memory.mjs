// Preloaded into the proxy by bench/soak.ts (`node --expose-gc --import`): appends the process's
// memory and CPU time to SOAK_MEMORY every second, one JSON line. Every 5 s it first runs a full
// GC, so `live` is the heap still held (what a leak grows), free of garbage not yet collected.
// The heap is only visible from inside; nothing else here.
import { appendFileSync } from 'node:fs';

const out = process.env.SOAK_MEMORY;
if (out) {
  let n = 0;
  const sample = () => {
    const collect = n++ % 5 === 0 && typeof globalThis.gc === 'function';
    if (collect) globalThis.gc();
    const m = process.memoryUsage();
    const c = process.cpuUsage();
    const line = { t: Date.now(), pid: process.pid, rss: m.rss, heap: m.heapUsed, external: m.external, cpuUs: c.user + c.system };
    if (collect) line.live = m.heapUsed;
    appendFileSync(out, `${JSON.stringify(line)}\n`);
  };
  sample();
  setInterval(sample, 1_000).unref();
}
