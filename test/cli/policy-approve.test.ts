import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as policyCli } from '../../src/cli/policy.ts';

const POLICY = `
[[policy]]
name = "refunds"
effect = "permit"
conditions = [ { action = "refunds.issue" } ]

[[policy]]
name = "big_refunds_need_a_human"
description = "refunds of 500 or more"
effect = "approve"
conditions = [ { action = "refunds.issue" }, { param_min = { field = "/amount", min = 500 } } ]
approval = { approvers = ["role:finance", "id:alice"], grant_ttl = "10m", uses = 2 }
`;

let dir: string;
let out: string[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kavach-approve-cli-'));
  await writeFile(join(dir, 'p.toml'), POLICY);
  await writeFile(
    join(dir, 'big.json'),
    JSON.stringify({ principalId: 'bot', principalKind: 'agent', actionName: 'refunds.issue', params: { amount: 900 } }),
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
  out = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const code = await policyCli(argv);
  return { code, out: out.join('') };
}

describe('kavach policy with approve policies', () => {
  it('check counts them and prints each approval table', async () => {
    const r = await cli('check', join(dir, 'p.toml'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('2 policies (1 permit, 1 approve, 0 refuse, 0 with rate limits or budgets)');
    expect(r.out).toContain('- approve big_refunds_need_a_human: action matches "refunds.issue"; /amount >= 500');
    expect(r.out).toContain('approval: role:finance, id:alice; quorum 1; waits 15m; a grant lasts 10m for 2 uses');
  });

  it('explain shows APPROVAL_REQUIRED, the matching approve policy and its table', async () => {
    const r = await cli('explain', join(dir, 'p.toml'), '--context', join(dir, 'big.json'));
    expect(r.code).toBe(3);
    expect(r.out).toContain('verdict: Refused by policy [APPROVAL_REQUIRED]');
    expect(r.out).toContain("approve 'big_refunds_need_a_human': MATCHES");
    expect(r.out).toContain('approval: role:finance, id:alice');
    const json = await cli('explain', join(dir, 'p.toml'), '--context', join(dir, 'big.json'), '--json');
    const parsed = JSON.parse(json.out) as { verdict: { code: string; approval: { id: string } }; policies: { effect: string }[] };
    expect(parsed.verdict.code).toBe('APPROVAL_REQUIRED');
    expect(parsed.policies.map((p) => p.effect)).toEqual(['permit', 'approve']);
  });
});
