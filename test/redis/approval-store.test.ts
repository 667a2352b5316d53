import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalError, Gate, StoreUnavailableError, type GateOptions, type PermitIssuer, type Verdict } from '../../src/engine/index.ts';
import { RedisApprovalStore, RedisRateStore } from '../../src/redis/index.ts';
import { ALICE, BOB, refund, refundPolicy, requestId } from '../engine/approvals-helpers.ts';
import { manualClock } from '../engine/helpers.ts';
import { readAuditLog, verifyAuditLog, type ApprovalRecord } from '../../src/audit/index.ts';
import { key, logNamer, openLog, tempDir } from '../audit/helpers.ts';
import { cleanup, freePort, keysUnder, PrivateRedis, REDIS_URL, skipRedis, uniquePrefix } from './redis-harness.ts';

const prefix = uniquePrefix('approvals');
const logs = logNamer(tempDir(), 'replica');
afterAll(() => cleanup(prefix));

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

/** Generous: these tests count exact outcomes, and a loaded CI host can take more than 100 ms per command. */
const TIMEOUT = { commandTimeoutMs: 3_000 };

let n = 0;
/** One replica: its own Redis connections (as a separate process would have) over a shared prefix. */
function replica(
  keyPrefix: string,
  approval: Record<string, unknown> = {},
  extra: GateOptions = {},
  url = REDIS_URL,
): { gate: Gate; store: RedisApprovalStore } {
  const store = new RedisApprovalStore(url, { keyPrefix, ...TIMEOUT });
  const gate = Gate.fromDict(refundPolicy(approval), { drift: false, ...extra, stores: { approval: store, ...extra.stores } });
  closers.push(
    () => gate.close(),
    () => store.close(),
  );
  return { gate, store };
}
const pair = (approval: Record<string, unknown> = {}, extra: GateOptions = {}) => {
  const keyPrefix = `${prefix}${++n}:`;
  return [replica(keyPrefix, approval, extra).gate, replica(keyPrefix, approval, extra).gate] as const;
};
const code = (v: Verdict): string => (v.kind === 'refuse' ? v.code : v.kind);

async function approvalCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApprovalError) return err.code;
    throw err;
  }
  return 'resolved';
}

describe.skipIf(skipRedis)('RedisApprovalStore: two gates over one Redis', () => {
  it('a request made on A is the same request on B, decided via B and used on A; B then asks again; both logs verify', async () => {
    const keyPrefix = `${prefix}${++n}:`;
    const [logA, logB] = [logs(), logs()];
    const [auditA, auditB] = await Promise.all([openLog(logA), openLog(logB)]);
    const a = replica(keyPrefix, {}, { audit: auditA }).gate;
    const b = replica(keyPrefix, {}, { audit: auditB }).gate;
    const id = requestId(await a.evaluate(refund(600)));
    expect(requestId(await b.evaluate(refund(600)))).toBe(id);
    expect((await b.approvals.list({ status: 'pending' })).map((r) => r.id)).toEqual([id]);
    expect(await b.approvals.get(id)).toMatchObject({
      status: 'pending',
      principal: { id: 'agent-7', kind: 'agent' },
      args: { amount: 600, order: 'o-1' },
      sessionId: 's-1',
    });
    const granted = await b.approvals.decide(id, { approver: ALICE, decision: 'grant', note: 'ok' });
    expect(granted).toMatchObject({ status: 'granted', decisions: [{ approver: ALICE, decision: 'grant', note: 'ok' }] });
    expect(await a.evaluate(refund(600))).toMatchObject({ kind: 'permit', approval: { id } });
    const again = await b.evaluate(refund(600));
    expect(code(again)).toBe('APPROVAL_REQUIRED');
    expect(requestId(again)).not.toBe(id);
    expect((await a.approvals.get(id))?.status).toBe('used');
    await Promise.all([auditA.close(), auditB.close()]);
    for (const path of [logA, logB]) expect((await verifyAuditLog(path, key().publicKeys())).unsealed).toBe(0);
    const events = async (path: string) =>
      (await readAuditLog(path, { keys: key().publicKeys() })).records
        .filter((r): r is ApprovalRecord => r.type === 'approval')
        .map((r) => `${r.event}:${r.approval === id ? 'id' : 'other'}`);
    expect(await events(logA)).toEqual(['requested:id', 'used:id']);
    expect(await events(logB)).toEqual(['granted:id', 'requested:other']);
  });

  it('wait on A wakes when B decides', async () => {
    const [a, b] = pair();
    const id = requestId(await a.evaluate(refund(600)));
    const waiting = a.approvals.wait(id, { timeoutMs: 30_000 });
    await b.approvals.decide(id, { approver: BOB, decision: 'deny' });
    expect((await waiting).status).toBe('denied');
    expect(code(await a.evaluate(refund(600)))).toBe('APPROVAL_DENIED');
  });

  it('N concurrent retries spread over both replicas take exactly `uses` permits', async () => {
    for (const uses of [1, 3]) {
      const [a, b] = pair({ uses });
      const id = requestId(await a.evaluate(refund(600)));
      await b.approvals.decide(id, { approver: ALICE, decision: 'grant' });
      const verdicts = await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).evaluate(refund(600))));
      expect(verdicts.filter((v) => v.kind === 'permit')).toHaveLength(uses);
      expect(verdicts.filter((v) => code(v) === 'APPROVAL_REQUIRED')).toHaveLength(24 - uses);
      // The retries that found the grant spent made one new request between them, not one each.
      expect(new Set(verdicts.filter((v) => v.kind === 'refuse').map(requestId)).size).toBe(1);
    }
  });

  it('counts the quorum across replicas by distinct approver; rules checked on either', async () => {
    const [a, b] = pair({ quorum: 2 });
    const id = requestId(await a.evaluate(refund(600)));
    expect((await a.approvals.decide(id, { approver: ALICE, decision: 'grant' })).status).toBe('pending');
    expect((await b.approvals.decide(id, { approver: ALICE, decision: 'grant' })).status).toBe('pending');
    expect(
      await approvalCode(b.approvals.decide(id, { approver: { id: 'agent-7', kind: 'agent', roles: ['finance'] }, decision: 'grant' })),
    ).toBe('SELF_APPROVAL');
    expect(await approvalCode(b.approvals.decide(id, { approver: { id: 'x', kind: 'user', roles: ['support'] }, decision: 'grant' }))).toBe(
      'NOT_AN_APPROVER',
    );
    expect((await b.approvals.decide(id, { approver: BOB, decision: 'grant' })).status).toBe('granted');
    expect(await approvalCode(a.approvals.decide(id, { approver: BOB, decision: 'deny' }))).toBe('NOT_PENDING');
    expect(await approvalCode(a.approvals.decide('no-such-id', { approver: BOB, decision: 'deny' }))).toBe('NOT_FOUND');
    expect(await a.evaluate(refund(600))).toMatchObject({ kind: 'permit', approval: { id } });
  });

  it('expires by the gate clock: a lapsed request cannot be decided and the call asks again', async () => {
    const clock = manualClock();
    const [a, b] = pair({ timeout: '1m' }, { clock: clock.now });
    const id = requestId(await a.evaluate(refund(600)));
    clock.advance(60_000);
    expect(await approvalCode(b.approvals.decide(id, { approver: ALICE, decision: 'grant' }))).toBe('EXPIRED');
    expect((await a.approvals.get(id))?.status).toBe('expired');
    expect(requestId(await b.evaluate(refund(600)))).not.toBe(id);
  });

  it('gives back a use when A cannot sign, so B can use it', async () => {
    const keyPrefix = `${prefix}${++n}:`;
    const failing: PermitIssuer = { issue: async () => Promise.reject(new Error('HSM offline')) };
    const a = replica(keyPrefix, {}, { signer: failing }).gate;
    const b = replica(keyPrefix).gate;
    const id = requestId(await a.evaluate(refund(600)));
    await b.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    expect(code(await a.evaluate(refund(600)))).toBe('SIGNING_FAILED');
    expect(await b.evaluate(refund(600))).toMatchObject({ kind: 'permit', approval: { id } });
  });

  it("charges an approve policy's rate limit on the shared rate store only when the approved call runs", async () => {
    const keyPrefix = `${prefix}${++n}:`;
    const policy = {
      policies: [
        { name: 'ask', effect: 'approve', conditions: [{ rate_limit: { max: 1, window: '1h' } }], approval: { uses: 2, grant_ttl: '1h' } },
      ],
    };
    const gates = [0, 1].map(() => {
      const approval = new RedisApprovalStore(REDIS_URL, { keyPrefix, ...TIMEOUT });
      const rate = new RedisRateStore(REDIS_URL, { keyPrefix, ...TIMEOUT });
      const gate = Gate.fromDict(policy, { drift: false, stores: { approval, rate } });
      closers.push(
        () => gate.close(),
        () => approval.close(),
        () => rate.close(),
      );
      return gate;
    });
    const [a, b] = gates as [Gate, Gate];
    const first = requestId(await a.evaluate(refund(1)));
    const second = requestId(await b.evaluate(refund(2)));
    await a.approvals.decide(first, { approver: ALICE, decision: 'grant' });
    await b.approvals.decide(second, { approver: ALICE, decision: 'grant' });
    expect(code(await b.evaluate(refund(1)))).toBe('permit');
    expect(code(await a.evaluate(refund(2)))).toBe('RATE_LIMITED');
    expect((await a.approvals.get(second))?.status).toBe('granted');
  });

  it('keeps every key under its prefix, and reads an unreadable record as a store failure', async () => {
    const keyPrefix = `${prefix}${++n}:`;
    const { gate } = replica(keyPrefix);
    const id = requestId(await gate.evaluate(refund(600)));
    const keys = await keysUnder(keyPrefix);
    expect(keys.length).toBeGreaterThan(0);
    const client = new Redis(REDIS_URL);
    try {
      const requestKey = keys.find((k) => k.startsWith(`${keyPrefix}ar:`)) as string;
      await client.hset(requestKey, 'doc', '{"not":"a request"}');
    } finally {
      client.disconnect();
    }
    await expect(gate.approvals.get(id)).rejects.toThrow(StoreUnavailableError);
    expect(code(await gate.evaluate(refund(601)))).toBe('APPROVAL_REQUIRED');
  });
});

describe.skipIf(skipRedis)('RedisApprovalStore during a Redis outage', () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = new PrivateRedis(await freePort());
    await server.start();
  });
  afterAll(() => server.kill());

  it('refuses STORE_UNAVAILABLE, never permits, even a call granted before the outage', async () => {
    const keyPrefix = `${prefix}outage:`;
    const a = replica(keyPrefix, { uses: 5 }, {}, server.url).gate;
    const b = replica(keyPrefix, { uses: 5 }, {}, server.url).gate;
    const id = requestId(await a.evaluate(refund(600)));
    await b.approvals.decide(id, { approver: ALICE, decision: 'grant' });
    expect(code(await a.evaluate(refund(600)))).toBe('permit');
    await server.kill();
    for (const gate of [a, b]) {
      expect(code(await gate.evaluate(refund(600)))).toBe('STORE_UNAVAILABLE');
      expect(code(await gate.evaluate(refund(700)))).toBe('STORE_UNAVAILABLE');
      await expect(gate.approvals.list()).rejects.toThrow(StoreUnavailableError);
      await expect(gate.approvals.decide(id, { approver: BOB, decision: 'deny' })).rejects.toThrow(StoreUnavailableError);
    }
    // Calls no approve policy matches do not need the approval store.
    expect(code(await a.evaluate(refund(100)))).toBe('permit');
  });
});
