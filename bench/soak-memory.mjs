// Preloaded into the proxy by bench/soak.ts (`node --import`): appends the process's memory (and CPU time) to
// SOAK_MEMORY every second, one JSON line. The heap is only visible from inside; nothing else here.
import { appendFileSync } from 'node:fs';

const out = process.env.SOAK_MEMORY;
if (out) {
  const sample = () => {
    const m = process.memoryUsage();
    const c = process.cpuUsage();
    appendFileSync(
      out,
      `${JSON.stringify({ t: Date.now(), pid: process.pid, rss: m.rss, heap: m.heapUsed, external: m.external, cpuUs: c.user + c.system })}\n`,
    );
  };
  sample();
  setInterval(sample, 1_000).unref();
}
