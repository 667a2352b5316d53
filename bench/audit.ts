/**
 * Audit log throughput: durable appends per second (group commit: every append resolves only after
 * the write + fdatasync of its batch) and verification speed (records per second, checkpoint
 * signatures included).
 *
 *   npx tsx bench/audit.ts [--records N] [--trials N] [--mode hybrid|pq]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, KeyPair, verifyAuditLog, type VerdictEvent } from '../dist/index.js';
import './util.ts'; // warns when dist/ is older than src/

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : fallback;
};
const TOTAL = Number(flag('records', '300000'));
const MODE = flag('mode', 'hybrid') as 'hybrid' | 'pq';

const dir = mkdtempSync(join(tmpdir(), 'kavach-bench-audit-'));
const keyPair = KeyPair.generate();
const actions = ['fs.read_file', 'fs.write_file', 'github.create_issue', 'payments.refund', 'shell.exec'];

function event(i: number): VerdictEvent {
  const refused = i % 5 === 4;
  return {
    type: 'verdict',
    time: Date.now(),
    evaluationId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    principal: `agent-${i % 50}`,
    principalKind: 'agent',
    action: actions[i % actions.length] as string,
    session: `session-${i % 200}`,
    verdict: refused ? 'refuse' : 'permit',
    ...(refused
      ? { code: 'NO_POLICY_MATCH' as const, evaluator: 'policy', reason: "no policy permits 'shell.exec'" }
      : { policy: 'agent-reads', permit: `jti-${i}` }),
    args: { path: `/home/alice/work/src/file-${i}.ts`, encoding: 'utf8', limit: 4096 },
  };
}

/** `concurrency` callers, each appending and awaiting in a loop until `total` records. */
async function appendRun(name: string, total: number, concurrency: number): Promise<{ perSec: number; cpuUs: number; path: string }> {
  const path = join(dir, `${name}.jsonl`);
  const log = await AuditLog.open(path, { keyPair, mode: MODE });
  let next = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await log.append(event(next++));
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  await log.close();
  return { perSec: (total / ms) * 1000, cpuUs: (cpu.user + cpu.system) / total, path };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

console.log(
  `audit bench: ${MODE} checkpoints (default: every 50,000 records or 5 s), node ${process.version}, load average ${loadavg()[0]!.toFixed(1)} on this machine`,
);
const rows: string[][] = [];
const single = await appendRun('one-fsync-per-record', 2_000, 1);
rows.push(['1 appender (one fsync per record)', fmt(2_000), `${fmt(single.perSec)} appends/s`, `${single.cpuUs.toFixed(1)} µs CPU/append`]);
let biggest = single;
// The machine is shared: repeat each run and report the best and the median.
const TRIALS = Number(flag('trials', '3'));
for (const c of [64, 1024, 4096]) {
  const runs: { perSec: number; cpuUs: number; path: string }[] = [];
  for (let t = 0; t < TRIALS; t++) runs.push(await appendRun(`group-${c}-${t}`, TOTAL, c));
  const sorted = runs.slice().sort((x, y) => x.perSec - y.perSec);
  const best = sorted.at(-1) as (typeof runs)[number];
  const median = sorted[Math.floor(sorted.length / 2)] as (typeof runs)[number];
  rows.push([
    `${c} concurrent appenders (group commit)`,
    fmt(TOTAL),
    `best ${fmt(best.perSec)} / median ${fmt(median.perSec)} appends/s`,
    `${median.cpuUs.toFixed(1)} µs CPU/append`,
  ]);
  biggest = best;
}
const c0 = process.cpuUsage();
const t0 = performance.now();
const report = await verifyAuditLog(biggest.path, keyPair.publicKeys());
const vms = performance.now() - t0;
const vcpu = process.cpuUsage(c0);
const bytes = report.files.reduce((sum, f) => sum + statSync(f).size, 0);
rows.push([
  `verify (${report.checkpoints} checkpoint signatures, ${report.files.length} segments)`,
  fmt(report.records),
  `${fmt((report.records / vms) * 1000)} records/s`,
  `${((vcpu.user + vcpu.system) / report.records).toFixed(1)} µs CPU/record`,
]);

const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const [a, b, c, d] of rows) console.log(`  ${a!.padEnd(w[0]!)}  ${b!.padStart(w[1]!)} records  ${c!.padStart(w[2]!)}  ${d}`);
console.log(`  ${fmt(bytes / report.records)} bytes/record on disk; load average now ${loadavg()[0]!.toFixed(1)} (2 cores, shared)`);
rmSync(dir, { recursive: true, force: true });
