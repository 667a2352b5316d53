import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Every example agent runs offline and shows the five scripted outcomes, in its own framework. */
describe.each([
  ['langchain', 'examples/agents/langchain-refund-support.ts'],
  ['ai-sdk', 'examples/agents/ai-sdk-file-assistant.ts'],
  ['openai-agents', 'examples/agents/openai-agents-finance.ts'],
])('example agent %s', (_name, file) => {
  it('runs offline: permit, refusal over a limit, rate-limited burst, drift invalidation, dead session, verified audit log', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kavach-example-test-'));
    dirs.push(out);
    const env: NodeJS.ProcessEnv = { ...process.env, KAVACH_EXAMPLE_OUT: out };
    delete env.OPENAI_API_KEY;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { env, timeout: 60_000 });
    expect(stdout).toContain('fake model, scripted (offline');
    expect(stdout).toMatch(/✔ PERMIT by '/);
    expect(stdout).toMatch(/✘ REFUSE \[POLICY_DENIED\]/);
    expect(stdout.match(/✘ REFUSE \[RATE_LIMITED\]/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(stdout).toMatch(/⊘ INVALIDATE session — ip drift/);
    expect(stdout).toMatch(/model saw {5}← \[[^\]]+\] Refused by policy \[SESSION_INVALID\] session:/);
    expect(stdout).toMatch(/Verified here: {4}\d+ records, \d+ signed checkpoint/);
    expect(stdout).toContain(`audit verify ${join(out, 'audit.jsonl')} --keys ${join(out, 'public.json')}`);
  });
});

/** The approval example: a refund over the limit waits for a person (scripted when not in a terminal). */
describe('example agent approval-refund', () => {
  it('runs offline with a scripted approver: a permit, a grant that runs the refund, a deny the model reads, verified audit log', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kavach-example-test-'));
    dirs.push(out);
    const env: NodeJS.ProcessEnv = { ...process.env, KAVACH_EXAMPLE_OUT: out, CI: 'true' };
    delete env.OPENAI_API_KEY;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/agents/approval-refund.ts'], { env, timeout: 60_000 });
    expect(stdout).toContain('fake model, scripted (offline');
    expect(stdout).toMatch(/✔ PERMIT by 'agent_refunds'/);
    expect(stdout.match(/⏸ WAITS FOR A PERSON \[APPROVAL_REQUIRED\]/g)).toHaveLength(2);
    expect(stdout).toMatch(/│ args: {4}\{"orderId":"A-1002","amount":900\}/);
    expect(stdout).toContain('scripted approver (CI): fiona GRANTS it');
    expect(stdout).toMatch(/✔ PERMIT by 'large_refunds_need_finance'/);
    expect(stdout).toContain('tool ran      ← refund: refunded $900 to order A-1002');
    expect(stdout).not.toContain('refunded $1200');
    expect(stdout).toMatch(/model saw {5}← \[ap-3\] Refused by policy \[APPROVAL_DENIED\]/);
    expect(stdout).toMatch(/used {4}\{"orderId":"A-1002","amount":900\} {2}grant by fiona/);
    expect(stdout).toMatch(/Verified here: {4}\d+ records, \d+ signed checkpoint/);
  });
});
