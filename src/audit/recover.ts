import { hash as digest } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ChainWalker, parseRecord, signatureFailure } from './chain.ts';
import type { CheckpointVerifier } from './checkpoint.ts';
import { AuditError } from './errors.ts';
import { listSegments } from './files.ts';
import { CHECKPOINT_DOMAIN, checkpointMessage, type AuditRecord, type CheckpointMode, type CheckpointRecord } from './record.ts';
import { readSeal } from './seal.ts';
import { firstNonUtf8Line, splitLog } from './split.ts';

/** Where a log left off, as found on open. */
export interface TailState {
  logId: string;
  mode: CheckpointMode | undefined;
  nextSeq: number;
  head: string;
  /** Highest rotated segment number (0: none). */
  segments: number;
  /** Bytes in the active file after any cut (0 when it must be created). */
  activeBytes: number;
  /** Kid of the newest checkpoint (or of genesis). */
  lastKid: string | undefined;
  /** Records since the newest checkpoint. */
  sinceCheckpoint: number;
  /** The newest checkpoint (a rotated segment ends with one), for the anchor to compare. */
  lastCheckpoint: CheckpointRecord | undefined;
}

export interface Recovered {
  /** Undefined: no log yet (or only a torn first line): start a new one. */
  tail: TailState | undefined;
  /** The seal file's checkpoint, when there is one (it matched the log). */
  seal?: CheckpointRecord;
  /** A torn last line that was cut from the active file. */
  cut?: { file: string; bytes: number; hash: string };
}

/**
 * Reads the end of an existing log, checks it (chain, own checkpoint signatures, the seal file),
 * cuts a torn last line, and says where to continue. Only the newest segment is read: the whole
 * log is checked by verifyAuditLog. A tail that fails is never extended: this throws AuditError.
 */
export async function recoverTail(path: string, own: { kid: string; verifier?: CheckpointVerifier | undefined }): Promise<Recovered> {
  const segments = await listSegments(path);
  const active = await readIfExists(path);
  let cut: Recovered['cut'];
  let activeLines: string[] = [];
  let activeBytes = 0;
  if (active) {
    const split = splitLog(active);
    refuseNonUtf8(active, split.goodBytes, path);
    // Cut only once everything before the tear has verified: a log refused below keeps every byte
    // (a sealed record that lost its newline is evidence, not a torn write).
    if (split.tornBytes > 0)
      cut = { file: basename(path), bytes: split.tornBytes, hash: digest('sha256', active.subarray(split.goodBytes), 'base64url') };
    activeLines = split.lines;
    activeBytes = split.goodBytes;
  }

  let lines = activeLines;
  let name = path;
  let before: string | undefined;
  if (activeLines.length > 0) {
    before = segments.at(-1)?.path;
  } else if (segments.length > 0) {
    // Crashed between rotating the old segment and writing the new one: the tail is the last segment.
    const last = segments.at(-1) as { path: string };
    const buf = await readFile(last.path);
    const split = splitLog(buf);
    refuseNonUtf8(buf, split.goodBytes, last.path);
    if (split.tornBytes > 0) throw new AuditError('BAD_RECORD', -1, `rotated segment ${last.path} ends in a torn line`);
    lines = split.lines;
    name = last.path;
    before = segments.at(-2)?.path;
  } else {
    const seal = await readSeal(path);
    if (seal) {
      throw new AuditError(
        'TRUNCATED',
        0,
        `${path} holds no records, but its seal file records a checkpoint at seq ${seal.seq} of log ${seal.log}: the log was removed (delete ${path}.seal to start a new log)`,
      );
    }
    if (cut) await truncateDurably(path, activeBytes);
    return cut ? { tail: undefined, cut } : { tail: undefined };
  }

  const first = parseRecord(lines[0] as string, -1, { file: name, line: 1 });
  let after: { seq: number; hash: string; log: string } | undefined;
  let carried: { mode: CheckpointMode | undefined; kid: string | undefined; checkpoint?: CheckpointRecord } = {
    mode: undefined,
    kid: undefined,
  };
  if (first.type !== 'genesis') {
    if (before === undefined)
      throw new AuditError('BAD_START', first.seq, `${name} does not begin with a genesis record and no earlier segment exists`, {
        file: name,
        line: 1,
      });
    const last = parseRecord(await lastLine(before), -1, { file: before, line: 0 });
    after = { seq: last.seq, hash: last.hash, log: last.log };
    if (last.type === 'checkpoint') carried = { mode: last.mode, kid: last.kid, checkpoint: last };
  }

  let sinceCheckpoint = 0;
  let lastKid = carried.kid;
  let lastCheckpoint = carried.checkpoint;
  const onRecord = (r: AuditRecord): void => {
    if (r.type === 'checkpoint') {
      sinceCheckpoint = 0;
      lastKid = r.kid;
      lastCheckpoint = r;
    } else {
      sinceCheckpoint++;
      if (r.type === 'genesis') lastKid = r.kid;
    }
  };
  const seal = await readSeal(path);
  const walker = new ChainWalker({
    startIndex: after ? after.seq + 1 : 0,
    onRecord,
    ...(after ? { after } : {}),
    ...(seal ? { anchor: { seq: seal.seq, hash: seal.hash } } : {}),
  });
  walker.walk({ name, lines });
  if (walker.mode === undefined && carried.mode !== undefined) walker.mode = carried.mode;

  if (seal) {
    if (seal.log !== walker.logId)
      throw new AuditError('ANCHOR_MISMATCH', -1, `the seal file belongs to log ${seal.log}, not ${String(walker.logId)}`);
    if (seal.seq >= walker.nextSeq) {
      throw new AuditError(
        'TRUNCATED',
        walker.index,
        `the log ends at seq ${walker.nextSeq - 1} but its seal file records a checkpoint at seq ${seal.seq}: sealed records were cut`,
      );
    }
  }
  if (own.verifier) {
    for (const cp of walker.checkpoints) {
      if (cp.record.kid !== own.kid) continue;
      try {
        await own.verifier.verifyCheckpoint(cp.record.mode, CHECKPOINT_DOMAIN, checkpointMessage(cp.record), cp.record.sig, cp.record.time);
      } catch (err) {
        throw signatureFailure(err, cp.index, cp);
      }
    }
  }
  if (cut) await truncateDurably(path, activeBytes);
  return {
    tail: {
      logId: walker.logId as string,
      mode: walker.mode,
      nextSeq: walker.nextSeq,
      head: walker.head,
      segments: segments.at(-1)?.n ?? 0,
      activeBytes,
      lastKid,
      sinceCheckpoint,
      lastCheckpoint,
    },
    ...(cut ? { cut } : {}),
    ...(seal ? { seal } : {}),
  };
}

/** The last complete line of a (rotated, so cleanly ended) segment, reading only its end. */
async function lastLine(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    for (let want = 64 * 1024; ; want *= 4) {
      const len = Math.min(size, want);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      const end = buf.lastIndexOf(0x0a);
      const start = end > 0 ? buf.lastIndexOf(0x0a, end - 1) : -1;
      if (start >= 0 || len === size) return buf.toString('utf8', start + 1, end < 0 ? len : end);
    }
  } finally {
    await fh.close();
  }
}

/** Bytes that are not UTF-8 fail verification: such a tail is not continued (nor cut). */
function refuseNonUtf8(buf: Uint8Array, goodBytes: number, file: string): void {
  const bad = firstNonUtf8Line(buf, goodBytes);
  if (bad >= 0) throw new AuditError('BAD_RECORD', -1, 'a record is not valid UTF-8 (the bytes were changed)', { file, line: bad + 1 });
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function truncateDurably(path: string, size: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(size);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
