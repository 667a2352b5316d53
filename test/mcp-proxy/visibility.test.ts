import { describe, expect, it } from 'vitest';
import { Gate } from '../../src/engine/gate.ts';
import { couldBePermitted } from '../../src/mcp-proxy/visibility.ts';

const alice = { principalId: 'alice', principalKind: 'agent' as const, roles: ['dev'] };

describe('which tools a principal could be permitted', () => {
  const gate = Gate.fromToml(`
[[policy]]
name = "reads"
effect = "permit"
conditions = [{ action = "fs.read_*" }, { path_within = { field = "path", roots = ["/w"] } }]

[[policy]]
name = "ops-only"
effect = "permit"
conditions = [{ action = "fs.delete" }, { identity_role = "ops" }]

[[policy]]
name = "never-env"
effect = "refuse"
conditions = [{ action = "fs.read_env" }]

[[policy]]
name = "sometimes-refused"
effect = "refuse"
conditions = [{ action = "fs.read_file" }, { param_glob = { field = "path", pattern = "*.pem" } }]
`);

  it('shows a tool a permit policy could match (argument conditions assumed satisfiable)', () => {
    expect(couldBePermitted(gate.policies, alice, 'fs.read_file')).toBe(true);
  });

  it('hides a tool no permit policy can match for this identity', () => {
    expect(couldBePermitted(gate.policies, alice, 'fs.delete')).toBe(false);
    expect(couldBePermitted(gate.policies, { ...alice, roles: ['ops'] }, 'fs.delete')).toBe(true);
    expect(couldBePermitted(gate.policies, alice, 'fs.write_file')).toBe(false);
  });

  it('hides a tool an unconditional refuse always wins for', () => {
    expect(couldBePermitted(gate.policies, alice, 'fs.read_env')).toBe(false);
  });

  it('hides everything under the kill switch', () => {
    expect(couldBePermitted(Gate.fromToml('').policies, alice, 'fs.read_file')).toBe(false);
  });
});
