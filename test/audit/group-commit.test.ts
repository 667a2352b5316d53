import type { FileHandle } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { AuditError } from '../../src/audit/errors.ts';
import { GroupCommitWriter, type PendingLine } from '../../src/audit/group-commit.ts';
import type { AuditRecord } from '../../src/audit/record.ts';

/** A file handle that records writes and syncs; `holdSync` keeps the next datasync waiting until released. */
function fakeFile() {
  const writes: string[] = [];
  let syncs = 0;
  let held: { entered: () => void; release: Promise<void> } | undefined;
  let failWrites: Error | undefined;
  const fh = {
    write: async (buf: Buffer, off: number, len: number) => {
      if (failWrites) throw failWrites;
      writes.push(buf.subarray(off, off + len).toString('utf8'));
      return { bytesWritten: len };
    },
    datasync: async () => {
      syncs++;
      const h = held;
      held = undefined;
      if (h) {
        h.entered();
        await h.release;
      }
    },
    close: async () => undefined,
  };
  return {
    fh: fh as unknown as FileHandle,
    writes,
    syncs: () => syncs,
    failWritesWith: (err: Error) => void (failWrites = err),
    /** The next datasync waits: resolves `entered` when it starts; call the returned release to let it finish. */
    holdSync: () => {
      let entered!: () => void;
      let release!: () => void;
      const started = new Promise<void>((r) => (entered = r));
      held = { entered, release: new Promise<void>((r) => (release = r)) };
      return { started, release: () => release() };
    },
  };
}

function line(seq: number, outcome: { done: number[]; failed: unknown[] }): PendingLine {
  return {
    line: `{"seq":${seq}}\n`,
    record: { seq } as unknown as AuditRecord,
    resolve: (r) => void outcome.done.push(r.seq),
    reject: (e) => void outcome.failed.push(e),
  };
}

describe('GroupCommitWriter', () => {
  it('sends the lines queued while one batch syncs out together in the next: one datasync per batch', async () => {
    const file = fakeFile();
    const writer = new GroupCommitWriter('/log.jsonl', file.fh, 0, () => undefined);
    const outcome = { done: [] as number[], failed: [] as unknown[] };
    const hold = file.holdSync();
    writer.push(line(0, outcome));
    await hold.started; // the first batch is syncing
    for (let seq = 1; seq <= 3; seq++) writer.push(line(seq, outcome));
    expect(outcome.done).toEqual([]);
    hold.release();
    await writer.whenDurable(4);
    expect(file.writes).toEqual(['{"seq":0}\n', '{"seq":1}\n{"seq":2}\n{"seq":3}\n']);
    expect(file.syncs()).toBe(2);
    expect(outcome.done).toEqual([0, 1, 2, 3]);
    expect(writer.durableSeq).toBe(4);
  });

  it('resolves a record only once the batch holding it is synced', async () => {
    const file = fakeFile();
    const writer = new GroupCommitWriter('/log.jsonl', file.fh, 7, () => undefined);
    const outcome = { done: [] as number[], failed: [] as unknown[] };
    const hold = file.holdSync();
    writer.push(line(7, outcome));
    await hold.started;
    expect(file.writes).toEqual(['{"seq":7}\n']); // written, not yet durable
    expect(outcome.done).toEqual([]);
    expect(writer.durableSeq).toBe(7);
    hold.release();
    await writer.whenDurable(8);
    expect(outcome.done).toEqual([7]);
  });

  it('reports a failed write with the batch in flight; abort rejects it, the queue and every waiter', async () => {
    const file = fakeFile();
    file.failWritesWith(new Error('disk full'));
    const outcome = { done: [] as number[], failed: [] as unknown[] };
    let reported: { err: AuditError; inFlight: readonly PendingLine[] } | undefined;
    const writer: GroupCommitWriter = new GroupCommitWriter('/log.jsonl', file.fh, 0, (err, inFlight) => {
      reported = { err, inFlight };
      writer.abort(err, inFlight);
    });
    writer.push(line(0, outcome));
    const waiting = writer.whenDurable(1);
    await expect(waiting).rejects.toMatchObject({ code: 'LOG_FAILED' });
    expect(reported?.err.message).toMatch(/audit log \/log\.jsonl: write failed: disk full/);
    expect(reported?.inFlight.map((p) => p.record.seq)).toEqual([0]);
    expect(outcome.failed).toHaveLength(1);
    // Nothing more is written once aborted: a later line is refused at once, with the first failure.
    writer.push(line(1, outcome));
    expect(outcome.failed).toEqual([reported?.err, reported?.err]);
    await expect(writer.whenDurable(2)).rejects.toBe(reported?.err);
    expect(outcome.done).toEqual([]);
  });
});
