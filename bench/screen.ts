/**
 * Result screening (DESIGN §13): the cost of screening a 1 MB tool result (mixed prose, code, JSON,
 * ids, numbers and a few secrets) with every built-in detector, and the cost of a call no screen
 * applies to. Run: npm run build && npx tsx bench/screen.ts (benchmarks measure the built dist/)
 */
import { loadavg } from 'node:os';
import { Gate } from '../dist/index.js';
import { fake } from '../test/engine/screen/fakes.ts';
import { machine, percentile, printTable } from './util.ts';

const ALL = [
  'aws_access_key',
  'aws_secret_key',
  'github_token',
  'gitlab_token',
  'slack_token',
  'stripe_key',
  'openai_key',
  'anthropic_key',
  'google_api_key',
  'private_key',
  'jwt',
  'card_number',
  'iban',
  'email',
];

/** ~1 MB of the things tool results are made of, with `secrets` secrets spread through it. */
export function mixedResult(bytes = 1 << 20, secrets = 8): string {
  const filler = [
    'The quarterly report lists 1,204 orders shipped from the Pune warehouse on 2026-03-14 at 09:41 UTC.',
    'const total = items.reduce((sum, item) => sum + item.price * item.quantity, 0); // order 99812',
    '{"id":"8f14e45f-ceea-467f-a1b2-3c4d5e6f7a8b","status":"open","amount":129.95,"ts":1733530000000}',
    'commit 3f786850e387550fdab836ed7e6dc881de23001b Author: build-bot Date: Tue Mar 3 10:22:04 2026',
    '/home/alice/work/src/engine/policy/compile.ts:142:17 - error TS2345: Argument of type number',
    'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
    'Call +91 98765 43210 or write to the desk; ticket TCK-004211 was reopened by the on-call engineer.',
    'SHA-256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  dist/kavach-0.1.0.tgz',
  ];
  const plants = [
    () => `aws_access_key_id = ${fake.awsAccessKey(7)}`,
    () => `token: ${fake.githubToken(7)}`,
    () => fake.privateKey(7),
    () => `Authorization: Bearer ${fake.jwt(7)}`,
    () => `card on file 4111 1111 1111 1111 exp 12/29`,
    () => `contact alice@example.com for access`,
    () => `STRIPE_SECRET_KEY=${fake.stripeKey(7)}`,
    () => `IBAN ${fake.iban(7)}`,
  ];
  const lines: string[] = [];
  let size = 0;
  let i = 0;
  const every = Math.floor(bytes / 100 / secrets);
  while (size < bytes) {
    const line = i > 0 && i % every === 0 ? (plants[(i / every) % plants.length] as () => string)() : (filler[i % filler.length] as string);
    lines.push(line);
    size += line.length + 1;
    i++;
  }
  return lines.join('\n');
}

/** Wall-clock and CPU milliseconds per run: the machine may be shared, CPU time is what screening costs. */
function time(fn: () => void, runs: number): { wall: number[]; cpuMs: number } {
  const wall: number[] = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    fn();
    wall.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const used = process.cpuUsage(cpu);
  return { wall, cpuMs: (used.user + used.system) / 1000 / runs };
}

export interface ScreenBench {
  text: { p50Ms: number; p99Ms: number; cpuMs: number; findings: number };
  json: { p50Ms: number; p99Ms: number; cpuMs: number; findings: number };
  noScreenNs: number;
  noMatchNs: number;
}

export function benchScreen(): ScreenBench {
  const gate = Gate.fromDict({
    policies: [],
    screen: [{ name: 'secrets', actions: ['fs.*'], detectors: ALL, mode: 'redact' }],
  });
  const bare = Gate.fromDict({ policies: [] });
  const ctx = { actionName: 'fs.read_text_file' };
  const measure = (result: object) => {
    let findings = 0;
    for (let i = 0; i < 5; i++) findings = gate.screen(ctx, result).findings.length; // warm up
    const { wall, cpuMs } = time(() => void gate.screen(ctx, result), 40);
    return { p50Ms: percentile(wall, 50), p99Ms: percentile(wall, 99), cpuMs, findings };
  };
  const text = mixedResult();
  // The same lines as a JSON document in a text item (the walk parses it and screens each string).
  const json = JSON.stringify({ lines: text.split('\n') });

  const calls = 2_000_000;
  const other = { actionName: 'refunds.issue' };
  const small = { content: [{ type: 'text', text: 'ok' }] };
  const perCall = (g: Gate, c: { actionName: string }) => {
    for (let i = 0; i < 100_000; i++) g.screen(c, small);
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) g.screen(c, small);
    return Number(process.hrtime.bigint() - start) / calls;
  };
  return {
    text: measure({ content: [{ type: 'text', text }] }),
    json: measure({ content: [{ type: 'text', text: json }] }),
    noScreenNs: perCall(bare, other),
    noMatchNs: perCall(gate, other),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = benchScreen();
  const row = (m: ScreenBench['text']) =>
    `p50 ${m.p50Ms.toFixed(2)} ms, p99 ${m.p99Ms.toFixed(2)} ms wall; ${m.cpuMs.toFixed(2)} ms CPU; ${m.findings} findings`;
  printTable(`Result screening, 14 detectors, redact (${machine()}, load ${loadavg()[0]?.toFixed(1)})`, [
    ['1 MB text result', row(r.text)],
    ['1 MB JSON text result', row(r.json)],
    ['no [[screen]] at all, per call', `${r.noScreenNs.toFixed(1)} ns`],
    ['screens, none for this action, per call', `${r.noMatchNs.toFixed(1)} ns`],
  ]);
}
