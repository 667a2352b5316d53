/**
 * What the three example agents share: a gate with drift detection, signed permits and a signed
 * audit log; a client "network" whose IP can change mid-session; and a plain-text transcript.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CallEnvironment, GateDecision } from '../../src/adapters/shared.ts';
import { AuditLog, verifyAuditLog } from '../../src/audit/index.ts';
import { KeyPair, PermitSigner } from '../../src/crypto/index.ts';
import { Gate } from '../../src/engine/gate.ts';
import type { Principal } from '../../src/engine/context.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** Where the client connects from. Phase 4 of every script changes `ip`: that is the drift. */
export interface ClientNetwork {
  ip: string;
  device: string;
}

export interface ExampleKavach {
  gate: Gate;
  principal: Principal;
  sessionId: string;
  net: ClientNetwork;
  /** The per-call environment the adapters read (ip and device feed drift detection). */
  environment: () => CallEnvironment;
  transcript: Transcript;
  /** Flushes and seals the audit log, prints how to verify it. */
  finish: () => Promise<void>;
}

export async function setupKavach(name: string, policyFile: string, principal: Principal): Promise<ExampleKavach> {
  const transcript = new Transcript();
  const outDir = process.env.KAVACH_EXAMPLE_OUT ?? join(tmpdir(), 'kavach-examples', `${name}-${Date.now()}`);
  await mkdir(outDir, { recursive: true });
  const keyPair = KeyPair.generate();
  const publicPath = join(outDir, 'public.json');
  await writeFile(publicPath, `${JSON.stringify(keyPair.publicKeys(), null, 2)}\n`);
  const auditPath = join(outDir, 'audit.jsonl');
  const audit = await AuditLog.open(auditPath, { keyPair, mode: 'hybrid' });
  const gate = await Gate.fromFile(join(here, 'policies', policyFile), {
    signer: PermitSigner.fromKeyPair(keyPair, { mode: 'hybrid' }),
    audit,
    drift: { ipGeo: 'strict', device: 'strict' },
  });
  const net: ClientNetwork = { ip: '203.0.113.7', device: 'laptop-7f3a' };
  const sessionId = `sess-${randomUUID().slice(0, 8)}`;
  return {
    gate,
    principal,
    sessionId,
    net,
    environment: () => ({ ip: net.ip, device: net.device }),
    transcript,
    finish: async () => {
      await gate.close();
      await audit.close();
      const cwd = process.cwd();
      const show = (p: string) => (p.startsWith(cwd) ? relative(cwd, p) : p);
      transcript.line('');
      transcript.line(`Signed audit log: ${show(auditPath)} (hybrid ML-DSA-65 + Ed25519 checkpoints)`);
      try {
        const report = await verifyAuditLog(auditPath, keyPair.publicKeys());
        transcript.line(`Verified here:    ${report.records} records, ${report.checkpoints} signed checkpoint(s), chain intact`);
      } catch (err) {
        transcript.line(`Verification FAILED: ${(err as Error).message}`);
        process.exitCode = 1;
      }
      transcript.line(`Verify it:        node bin/kavach.js audit verify ${show(auditPath)} --keys ${show(publicPath)}`);
    },
  };
}

/** The offline/real switch every example prints first. */
export function modelBanner(title: string, real: string | undefined): void {
  process.stdout.write(`\n=== ${title} ===\n`);
  process.stdout.write(
    real
      ? `model: ${real} (OPENAI_API_KEY is set)\n`
      : "model: the framework's own fake model, scripted (offline; set OPENAI_API_KEY for a real one)\n",
  );
}

function short(value: unknown, max = 110): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** A readable, line-per-event transcript on stdout. */
export class Transcript {
  line(text: string): void {
    process.stdout.write(`${text}\n`);
  }

  phase(title: string): void {
    this.line(`\n--- ${title}`);
  }

  user(text: string): void {
    this.line(`user          > ${text}`);
  }

  note(text: string): void {
    this.line(`              # ${text}`);
  }

  /** What the agent tried and the gate's verdict: wire this to the adapters' `onDecision`. */
  decision = (d: GateDecision): void => {
    this.line(`agent tried   → ${d.toolName}(${short(d.params ?? {}, 80)})${d.callId ? `  [${d.callId}]` : ''}`);
    const v = d.verdict;
    if (v.kind === 'permit') {
      const signed = v.permit ? ` · signed permit ${v.permit.slice(0, 18)}… (${v.permit.length} chars)` : '';
      this.line(`kavach        ✔ PERMIT${v.policy ? ` by '${v.policy}'` : ''}${signed}`);
    } else if (v.kind === 'refuse') {
      this.line(
        `kavach        ✘ REFUSE [${v.code}] ${v.reason}${v.retryAfterMs !== undefined ? ` (retry after ${Math.ceil(v.retryAfterMs / 1000)}s)` : ''}`,
      );
    } else {
      this.line(`kavach        ⊘ INVALIDATE ${v.scope.type} — ${v.reason}`);
    }
  };

  toolRan(name: string, result: unknown): void {
    this.line(`tool ran      ← ${name}: ${short(result)}`);
  }

  modelSaw(callId: string, content: unknown): void {
    this.line(`model saw     ← [${callId}] ${short(content, 240)}`);
  }

  modelSays(text: string): void {
    this.line(`model says    : ${short(text, 300)}`);
  }
}

/** The five user turns every example plays; phase 4 arrives from a new IP. */
export interface Phase {
  title: string;
  user: string;
  /** Runs before the turn (phase 4 moves the client to another network). */
  before?: (net: ClientNetwork, t: Transcript) => void;
}

export function drift(net: ClientNetwork, t: Transcript): void {
  const from = net.ip;
  net.ip = '198.51.100.23';
  t.note(`the client's IP changes mid-session: ${from} → ${net.ip}`);
}
