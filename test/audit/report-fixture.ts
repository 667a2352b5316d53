/**
 * A real gate run for the audit report tests: an enforcing gate (signed permits, strict drift) and
 * an observe-mode gate writing to one hybrid-signed audit log, with a drift invalidation, an
 * operator invalidation, a good and a failed policy reload, and agent-controlled markup in the
 * principal, action, reason and params.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/index.ts';
import type { KeyPair } from '../../src/crypto/keys.ts';
import { PermitSigner } from '../../src/crypto/permit-signer.ts';
import { Gate } from '../../src/engine/gate.ts';

export const XSS_SCRIPT = '<script>alert(1)</script>';
export const XSS_IMG = '<img src=x onerror=alert(1)>';
/** Tries to end the JSON data block and open a comment. */
export const XSS_BREAKOUT = '</script><!--<script>alert(2)</script>';

export const START = Date.parse('2026-03-14T09:00:00Z');

const POLICY = {
  policies: [
    { name: 'reads', effect: 'permit', conditions: [{ action: 'fs.read_*' }] },
    { name: 'no-rm', effect: 'refuse', conditions: [{ action: 'fs.rm' }] },
  ],
};
const POLICY_WITH_FETCH = { policies: [...POLICY.policies, { name: 'fetch', effect: 'permit', conditions: [{ action: 'net.fetch' }] }] };

export interface GateRun {
  path: string;
  keysPath: string;
}

/** Writes the log at dir/name and the public keys at dir/public.json. */
export async function writeGateRun(dir: string, keyPair: KeyPair, name = 'gate-run.jsonl'): Promise<GateRun> {
  const path = join(dir, name);
  const keysPath = join(dir, 'public.json');
  writeFileSync(keysPath, JSON.stringify(keyPair.publicKeys()));
  let now = START;
  const clock = (): number => now;
  const tick = (ms = 61_000): void => void (now += ms);
  const log = await AuditLog.open(path, {
    keyPair,
    mode: 'hybrid',
    recordArgs: true,
    checkpointEvery: { entries: 6, ms: 3_600_000 },
    clock,
  });
  const gate = Gate.fromDict(POLICY, {
    audit: log,
    signer: PermitSigner.fromKeyPair(keyPair, { mode: 'hybrid' }),
    drift: { ipGeo: 'strict' },
    clock,
  });
  const observe = Gate.fromDict(POLICY, { audit: log, observeOnly: true, drift: false, clock });
  const call = async (
    g: Gate,
    principalId: string,
    sessionId: string,
    actionName: string,
    extra: Record<string, unknown> = {},
  ): Promise<void> => {
    tick();
    await g.evaluate({ principalId, principalKind: 'agent', actionName, sessionId, params: { path: '/srv/data/report.csv' }, ...extra });
  };

  // research-bot: reads, one refused rm, one unmatched fetch
  await call(gate, 'research-bot', 's-alpha', 'fs.read_file');
  await call(gate, 'research-bot', 's-alpha', 'fs.read_dir');
  await call(gate, 'research-bot', 's-alpha', 'fs.rm', { params: { path: '/srv/data', recursive: true } });
  await call(gate, 'research-bot', 's-alpha', 'net.fetch', { params: { url: 'https://example.test/exfil' } });
  await call(gate, 'research-bot', 's-alpha', 'fs.read_file');
  // billing-bot: its session's IP changes (strict drift: invalidated), then the session is dead
  await call(gate, 'billing-bot', 's-beta', 'fs.read_file', { ip: '192.0.2.1' });
  await call(gate, 'billing-bot', 's-beta', 'fs.read_file', { ip: '192.0.2.1' });
  await call(gate, 'billing-bot', 's-beta', 'fs.read_file', { ip: '198.51.100.9' });
  await call(gate, 'billing-bot', 's-beta', 'fs.read_file', { ip: '198.51.100.9' });
  // agent-controlled markup everywhere it can go
  await call(gate, XSS_SCRIPT, 'xss-1', XSS_IMG, { params: { note: XSS_SCRIPT, html: XSS_IMG, breakout: XSS_BREAKOUT } });
  await call(gate, XSS_SCRIPT, 'xss-1', 'fs.read_file', { params: { path: XSS_IMG } });
  // policy reloads: one that adds net.fetch, one that fails
  tick();
  gate.reload(POLICY_WITH_FETCH);
  tick();
  try {
    gate.reload({ policies: [{ name: 'broken', effect: 'maybe', conditions: [] }] });
  } catch {
    // expected: the failed reload is recorded and the previous set stays
  }
  await call(gate, 'research-bot', 's-alpha', 'net.fetch', { params: { url: 'https://example.test/ok' } });
  tick();
  await gate.invalidate({ type: 'principal', principalId: 'billing-bot' }, `offboarded after incident ${XSS_BREAKOUT}`);
  // observe mode: everything is let through, the log says what enforcement would have done
  await call(observe, 'tuning-bot', 's-obs', 'fs.read_file');
  await call(observe, 'tuning-bot', 's-obs', 'fs.rm');
  await call(observe, 'tuning-bot', 's-obs', 'net.fetch');
  await call(observe, 'tuning-bot', 's-obs', 'fs.rm');
  await gate.close();
  await observe.close();
  await log.close();
  return { path, keysPath };
}
