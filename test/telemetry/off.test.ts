import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const FORBID = './test/telemetry/fixtures/forbid-otel.mjs';

function run(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', '--import', FORBID, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('telemetry off', () => {
  it('loads no @opentelemetry package: engine, audit log and proxy runtime run with every such import refused', () => {
    const r = run(['test/telemetry/fixtures/no-telemetry-run.ts']);
    expect(r.stderr).not.toContain('telemetry is off, yet');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('permit permit');
  });

  it('the guard itself refuses an @opentelemetry import (so the test above can fail)', () => {
    const r = run(['--input-type=module', '-e', "await import('@opentelemetry/api')"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('telemetry is off, yet @opentelemetry/api was imported');
  });
});
