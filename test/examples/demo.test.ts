import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe("npm run demo (the README's first command)", () => {
  it('shows permits, each kind of refusal, a verified permit, a rejected replay and a verified audit log', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], { timeout: 120_000 });
    for (const expected of [
      "PERMIT          (policy 'agent_small_refunds')",
      '[NO_POLICY_MATCH]',
      '[POLICY_DENIED]',
      '[RATE_LIMITED]',
      'INVALIDATE',
      '[SESSION_INVALID]',
      '[INVALID_CONTEXT]',
      'the call as permitted: accepted',
      'the same permit again (replay): rejected [REPLAYED]',
      'the permit with other arguments: rejected [ARGS_MISMATCH]',
      'chain verified',
    ]) {
      expect(stdout).toContain(expected);
    }
    // The traversal and the userinfo trick must be refused, not permitted.
    expect(stdout).toMatch(/path traversal out of the workspace\n.*\n\s+→ NO_POLICY_MATCH/);
    expect(stdout).toMatch(/fetch with a userinfo trick\n.*\n\s+→ NO_POLICY_MATCH/);
  });
});
