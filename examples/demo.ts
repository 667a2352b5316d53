/**
 * `npm run demo`: the gate on an embedded policy, no key to provide, no network. A scripted
 * support agent tries a series of tool calls; each line shows what it tried, the verdict, and
 * what the model would be told. Permits are signed (ML-DSA-65 + Ed25519, with a key made for the
 * run), checked the way a tool would check them, and every verdict lands in a signed audit log
 * that is verified at the end.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuditLog,
  Gate,
  InMemoryReplayStore,
  KeyPair,
  PermitError,
  PermitSigner,
  PermitVerifier,
  formatRefusal,
  verifyAuditLog,
  type ActionContext,
  type Verdict,
} from '../src/index.ts';

const POLICY = `
# A refund agent may refund small amounts, a few times an hour, within a daily budget.
[[policy]]
name = "agent_small_refunds"
effect = "permit"
conditions = [
  { identity_kind = "agent" },
  { action = "refunds.issue" },
  { param_max = { field = "/order/amount", max = 500 } },
  { param_in = { field = "/order/currency", values = ["EUR", "USD"] } },
  { rate_limit = { max = 3, window = "1h" } },
  { budget = { field = "/order/amount", max = 1000, window = "24h" } },
]

# It may read files in its workspace only.
[[policy]]
name = "agent_reads_workspace"
effect = "permit"
conditions = [
  { identity_kind = "agent" },
  { action = "fs.read_file" },
  { path_within = { field = "path", roots = ["/srv/support"] } },
]

# And fetch from the ticketing API only.
[[policy]]
name = "agent_fetches_tickets"
effect = "permit"
conditions = [
  { action = "http.fetch" },
  { url_host_in = { field = "url", hosts = ["tickets.example.com"] } },
]

# Nobody deletes customers through an agent.
[[policy]]
name = "no_customer_deletion"
effect = "refuse"
conditions = [{ action = "customers.delete*" }]

[[invariant]]
name = "hard_refund_cap"
actions = ["refunds.*"]
param_max = { field = "/order/amount", max = 2000 }
`;

const agent = {
  principalId: 'support-bot',
  principalKind: 'agent' as const,
  sessionId: 'chat-42',
  ip: '203.0.113.7',
  device: 'worker-1',
  audience: 'support-tools',
};

const steps: { note: string; call: Omit<ActionContext, 'principalId' | 'principalKind'> }[] = [
  {
    note: 'a small refund',
    call: { ...agent, actionName: 'refunds.issue', params: { order: { id: 'A-1', amount: 120, currency: 'EUR' } } },
  },
  {
    note: 'a refund over the per-call limit',
    call: { ...agent, actionName: 'refunds.issue', params: { order: { id: 'A-2', amount: 900, currency: 'EUR' } } },
  },
  { note: 'reading a ticket attachment', call: { ...agent, actionName: 'fs.read_file', params: { path: '/srv/support/tickets/77.txt' } } },
  {
    note: 'path traversal out of the workspace',
    call: { ...agent, actionName: 'fs.read_file', params: { path: '/srv/support/../../etc/passwd' } },
  },
  {
    note: 'fetch with a userinfo trick',
    call: { ...agent, actionName: 'http.fetch', params: { url: 'https://tickets.example.com@evil.example.net/x' } },
  },
  { note: 'deleting a customer', call: { ...agent, actionName: 'customers.delete', params: { id: 'C-9' } } },
  { note: 'refund #2', call: { ...agent, actionName: 'refunds.issue', params: { order: { id: 'A-3', amount: 300, currency: 'USD' } } } },
  { note: 'refund #3', call: { ...agent, actionName: 'refunds.issue', params: { order: { id: 'A-4', amount: 50, currency: 'USD' } } } },
  {
    note: 'refund #4 (over the hourly rate limit)',
    call: { ...agent, actionName: 'refunds.issue', params: { order: { id: 'A-5', amount: 10, currency: 'USD' } } },
  },
  {
    note: 'the same session from another IP (stolen session?)',
    call: { ...agent, ip: '198.51.100.66', actionName: 'fs.read_file', params: { path: '/srv/support/tickets/78.txt' } },
  },
  {
    note: 'any later call in that session',
    call: { ...agent, actionName: 'fs.read_file', params: { path: '/srv/support/tickets/79.txt' } },
  },
  {
    note: 'a malformed call (amount is NaN)',
    call: {
      ...agent,
      sessionId: 'chat-43',
      actionName: 'refunds.issue',
      params: { order: { id: 'A-6', amount: Number.NaN, currency: 'EUR' } },
    },
  },
];

function describe(v: Verdict): string {
  if (v.kind === 'permit') return `PERMIT          (policy '${v.policy}')`;
  return `${v.kind === 'refuse' ? v.code : 'INVALIDATE'}`.padEnd(16) + `model sees: ${formatRefusal(v)}`;
}

const out = (line = '') => process.stdout.write(`${line}\n`);
const dir = mkdtempSync(join(tmpdir(), 'kavach-demo-'));
const keyPair = KeyPair.generate();
const signer = PermitSigner.fromKeyPair(keyPair, { mode: 'hybrid' });
const audit = await AuditLog.open(join(dir, 'audit.jsonl'), { keyPair, mode: 'hybrid' });
const gate = Gate.fromToml(POLICY, { drift: { ipGeo: 'strict' }, signer, audit });
// What a tool does with the permit it receives: verify it against its own name and arguments.
const tool = new PermitVerifier({
  keys: keyPair.publicKeys(),
  mode: 'hybrid',
  audience: 'support-tools',
  replay: new InMemoryReplayStore(),
});

out(
  `Kavach gate demo: ${gate.policyCount} policies, principal ${agent.principalKind} '${agent.principalId}', key ${keyPair.kid.slice(0, 16)}…`,
);
out();
let firstPermit: { token: string; step: (typeof steps)[number] } | undefined;
for (const [i, step] of steps.entries()) {
  const verdict = await gate.evaluate({ principalId: agent.principalId, principalKind: agent.principalKind, ...step.call });
  out(`${String(i + 1).padStart(2)}. ${step.note}`);
  out(`    ${step.call.actionName} ${JSON.stringify(step.call.params)}`);
  out(`    → ${describe(verdict)}`);
  if (verdict.kind === 'permit' && verdict.permit && !firstPermit) firstPermit = { token: verdict.permit, step };
}

if (firstPermit) {
  const { token, step } = firstPermit;
  out();
  out(`The tool's side: each permit is a signed token (${token.length} bytes, ${token.slice(0, 24)}…)`);
  const check = async (label: string, args: unknown) => {
    try {
      const claims = await tool.verify(token, { action: step.call.actionName, args });
      out(`  ${label}: accepted (sub ${claims.sub}, act ${claims.act}, expires in ${Math.round((claims.exp - Date.now()) / 1000)}s)`);
    } catch (err) {
      out(`  ${label}: rejected [${err instanceof PermitError ? err.code : 'ERROR'}]`);
    }
  };
  await check('the call as permitted', step.call.params);
  await check('the same permit again (replay)', step.call.params);
  await check('the permit with other arguments', { order: { id: 'A-1', amount: 120_000, currency: 'EUR' } });
}

out();
out('Kill switch: reloading an empty policy set...');
gate.reload('');
const after = await gate.evaluate({
  principalId: 'support-bot',
  principalKind: 'agent',
  actionName: 'refunds.issue',
  params: { order: { amount: 1, currency: 'EUR' } },
});
out(`    → ${describe(after)}`);
await gate.close();
await signer.close();
await audit.close();

const report = await verifyAuditLog(join(dir, 'audit.jsonl'), keyPair.publicKeys());
out();
out(`Audit log ${join(dir, 'audit.jsonl')}: ${report.records} records, ${report.checkpoints} signed checkpoint(s), chain verified.`);
await keyPair.save(join(dir, 'secret.key'));
const { writeFileSync } = await import('node:fs');
writeFileSync(join(dir, 'public.json'), JSON.stringify(keyPair.publicKeys(), null, 2));
out(`Check it yourself: node bin/kavach.js audit verify ${join(dir, 'audit.jsonl')} --keys ${join(dir, 'public.json')}`);
out(`              or:  node bin/kavach.js audit show ${join(dir, 'audit.jsonl')}`);
