import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, verifyAuditLog } from '../../src/audit/index.ts';
import { KeyPair, PermitSigner } from '../../src/crypto/index.ts';
import { Gate } from '../../src/engine/index.ts';
import { otel, remoteParent } from './otel-helpers.ts';

const POLICY = {
  policies: [
    { name: 'refunds', effect: 'permit', conditions: [{ action: 'refunds.create' }, { param_max: { field: 'amount', max: 100 } }] },
    { name: 'no-deletes', effect: 'refuse', conditions: [{ action: 'db.delete' }] },
    {
      name: 'big-refunds',
      effect: 'approve',
      conditions: [{ action: 'refunds.create' }, { param_min: { field: 'amount', min: 500 } }],
    },
  ],
};
const agent = { principalId: 'agent-7', principalKind: 'agent' as const };

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function setup(extra: Parameters<typeof Gate.fromDict>[1] = {}) {
  const o = otel();
  const gate = Gate.fromDict(POLICY, { drift: false, telemetry: { tracer: o.tracer, meter: o.meter }, ...extra });
  cleanup.push(async () => {
    await gate.close();
    await o.close();
  });
  return { o, gate };
}

describe('gate telemetry', () => {
  it('emits a kavach.evaluate span per call with the verdict, code, policy, action, principal and evaluation id', async () => {
    const { o, gate } = setup();
    const permit = await gate.evaluate({ ...agent, actionName: 'refunds.create', params: { amount: 20 } });
    const refusal = await gate.evaluate({ ...agent, actionName: 'db.delete' });
    const [p, r] = o.finished('kavach.evaluate');
    expect(p?.attributes).toMatchObject({
      'kavach.verdict': 'permit',
      'kavach.policy': 'refunds',
      'kavach.action': 'refunds.create',
      'kavach.principal.id': 'agent-7',
      'kavach.evaluation_id': permit.evaluationId,
    });
    expect(p?.attributes['kavach.code']).toBeUndefined();
    expect(r?.attributes).toMatchObject({
      'kavach.verdict': 'refuse',
      'kavach.code': 'POLICY_DENIED',
      'kavach.policy': 'no-deletes',
      'kavach.evaluation_id': refusal.evaluationId,
    });
    // A refusal is the gate working, not an error of the operation.
    expect(r?.status.code).toBe(0);
  });

  it('makes the span a child of the trace context it is given', async () => {
    const { o, gate } = setup();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await gate.evaluate({ ...agent, actionName: 'db.delete' }, { traceContext: remoteParent(traceId, '00f067aa0ba902b7') });
    const [span] = o.finished('kavach.evaluate');
    expect(span?.spanContext().traceId).toBe(traceId);
    expect(span?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
  });

  it('records a hostile context as INVALID_CONTEXT without reading it again', async () => {
    const { o, gate } = setup();
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error('boom');
        },
      },
    ); // prettier-ignore
    const v = await gate.evaluate(hostile as never);
    expect(v).toMatchObject({ kind: 'refuse', code: 'INVALID_CONTEXT' });
    expect(o.finished('kavach.evaluate')[0]?.attributes['kavach.code']).toBe('INVALID_CONTEXT');
  });

  it('counts kavach.verdicts by verdict, code and action, and times evaluations', async () => {
    const { o, gate } = setup();
    for (let i = 0; i < 3; i++) await gate.evaluate({ ...agent, actionName: 'db.delete' });
    await gate.evaluate({ ...agent, actionName: 'refunds.create', params: { amount: 5 } });
    await gate.evaluate({ ...agent, actionName: 'nothing.here' });
    expect(
      await o.value('kavach.verdicts', { 'kavach.verdict': 'refuse', 'kavach.code': 'POLICY_DENIED', 'kavach.action': 'db.delete' }),
    ).toBe(3);
    expect(await o.value('kavach.verdicts', { 'kavach.verdict': 'permit', 'kavach.action': 'refunds.create' })).toBe(1);
    expect(await o.value('kavach.verdicts', { 'kavach.code': 'NO_POLICY_MATCH' })).toBe(1);
    expect(await o.histogramCount('kavach.evaluate.duration')).toBe(5);
    const unit = (await o.metrics()).find((m) => m.descriptor.name === 'kavach.evaluate.duration')?.descriptor.unit;
    expect(unit).toBe('s');
  });

  it('marks observe-mode verdicts: permitted, with the code enforcement would have given', async () => {
    const { o, gate } = setup({ observeOnly: true });
    await gate.evaluate({ ...agent, actionName: 'db.delete' });
    expect(await o.value('kavach.verdicts', { 'kavach.verdict': 'permit', 'kavach.observed': true, 'kavach.code': 'POLICY_DENIED' })).toBe(
      1,
    );
  });

  it('reports approvals waiting for a person on kavach.approvals.pending', async () => {
    const { o, gate } = setup();
    expect(await o.value('kavach.approvals.pending')).toBe(0);
    const v = await gate.evaluate({ ...agent, actionName: 'refunds.create', params: { amount: 900 } });
    expect(v).toMatchObject({ kind: 'refuse', code: 'APPROVAL_REQUIRED' });
    await gate.evaluate({ ...agent, actionName: 'refunds.create', params: { amount: 901 } });
    expect(await o.value('kavach.approvals.pending')).toBe(2);
    const id = v.kind === 'refuse' ? (v.approval?.id as string) : '';
    await gate.approvals.decide(id, { approver: { id: 'alice', kind: 'user' }, decision: 'deny' });
    expect(await o.value('kavach.approvals.pending')).toBe(1);
  });

  it('times permit signing and audit commits, and the audit record carries the trace id and still verifies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kavach-otel-'));
    const kp = KeyPair.generate();
    const log = await AuditLog.open(join(dir, 'audit.jsonl'), { keyPair: kp, mode: 'hybrid' });
    const signer = PermitSigner.fromKeyPair(kp, { mode: 'hybrid' });
    cleanup.push(async () => {
      await signer.close();
      await rm(dir, { recursive: true, force: true });
    });
    const { o, gate } = setup({ audit: log, signer });
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    await gate.evaluate(
      { ...agent, actionName: 'refunds.create', params: { amount: 1 } },
      { traceContext: remoteParent(traceId, 'b7ad6b7169203331') },
    );
    await gate.evaluate({ ...agent, actionName: 'db.delete' }); // no parent: a trace of its own
    await log.close();
    expect(await o.histogramCount('kavach.permit.sign.duration')).toBe(1);
    expect(await o.histogramCount('kavach.audit.commit.duration')).toBe(2);
    const path = join(dir, 'audit.jsonl');
    const verdicts = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === 'verdict');
    const spans = o.finished('kavach.evaluate');
    expect(verdicts[0].traceId).toBe(traceId);
    expect(verdicts[1].traceId).toBe(spans[1]?.spanContext().traceId);
    expect(verdicts[1].traceId).not.toBe(traceId);
    await expect(verifyAuditLog(path, kp.publicKeys())).resolves.toMatchObject({ records: expect.any(Number) });
    // The trace id is under the hash like every field: changing it breaks the chain.
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace(traceId, '1'.repeat(32)));
    await expect(verifyAuditLog(path, kp.publicKeys())).rejects.toThrow();
  });

  it('leaves records without a trace id when telemetry is off (the format old logs have)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kavach-otel-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const kp = KeyPair.generate();
    const log = await AuditLog.open(join(dir, 'audit.jsonl'), { keyPair: kp, mode: 'hybrid' });
    const gate = Gate.fromDict(POLICY, { drift: false, audit: log });
    await gate.evaluate(
      { ...agent, actionName: 'db.delete' },
      { traceContext: remoteParent('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331') },
    );
    await gate.close();
    await log.close();
    const text = await readFile(join(dir, 'audit.jsonl'), 'utf8');
    expect(text).toContain('"type":"verdict"');
    expect(text).not.toContain('traceId');
    await expect(verifyAuditLog(join(dir, 'audit.jsonl'), kp.publicKeys())).resolves.toBeDefined();
  });
});
