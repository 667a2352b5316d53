import { signatureDigest, type AnchorCheckpoint, type AnchoredCheckpoint, type AuditAnchor } from './anchor.ts';
import type { CheckpointAt } from './chain.ts';
import type { CheckpointVerifier } from './checkpoint.ts';
import { AuditError } from './errors.ts';
import { CHECKPOINT_DOMAIN, checkpointMessage, type CheckpointMode } from './record.ts';

/** What a check against the witness found (the log passed it). */
export interface AnchorCheckReport {
  /** The newest checkpoint the witness holds for the log. */
  latest: { seq: number; time: number };
  /** Checkpoints in the log that the witness holds and that match it. */
  matched: number;
  /** Records after the newest anchored checkpoint: sealed at most locally, which the host could still cut. */
  unanchored: number;
}

/** The log as walked (the chain and every checkpoint's signature already verified). */
export interface WalkedLog {
  logId: string;
  mode: CheckpointMode | undefined;
  firstSeq: number;
  nextSeq: number;
  checkpoints: readonly CheckpointAt[];
}

/**
 * Checks a verified log against a witness: the log must reach at least as far as the witness's
 * newest checkpoint (else it was cut back), and every checkpoint the witness holds within the log
 * must be in the log exactly (else it was rewritten and re-sealed by whoever holds the key).
 * `verifier` (the log's keys) checks the signature of a witness claim beyond the log's end, so a
 * forged claim is told apart from a cut. Throws AuditError; ANCHOR_UNAVAILABLE when the witness
 * cannot be read (nothing was checked).
 */
export async function checkAgainstAnchor(
  anchor: AuditAnchor,
  log: WalkedLog,
  verifier: CheckpointVerifier | undefined,
): Promise<AnchorCheckReport> {
  const lastSeq = log.nextSeq - 1;
  let latest: AnchorCheckpoint | undefined;
  let history: AnchoredCheckpoint[];
  try {
    latest = await anchor.latest(log.logId);
    // All of it from the log's first seq on, not only up to `latest`: a witness whose newest entry
    // was set back (by someone with its credentials) still shows the later checkpoints it took.
    history = await anchor.history(log.logId, log.firstSeq, Number.MAX_SAFE_INTEGER);
  } catch (err) {
    throw new AuditError(
      'ANCHOR_UNAVAILABLE',
      -1,
      `the audit anchor could not be read, so nothing was checked against it: ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    );
  }
  const held = history.filter((h) => h.seq >= log.firstSeq);
  if (latest !== undefined && latest.seq >= log.firstSeq) {
    held.push({ seq: latest.seq, headHash: latest.headHash, time: latest.time, signatureDigest: signatureDigest(latest.signature) });
  }
  const top = Math.max(latest?.seq ?? -1, ...history.map((h) => h.seq));
  if (top < 0) {
    throw new AuditError(
      'UNANCHORED',
      -1,
      `the audit anchor holds no checkpoint of log ${log.logId}: the log was never anchored there, or the anchor lost it`,
    );
  }
  if (top > lastSeq) {
    const claim = latest !== undefined && latest.seq === top ? latest : (held.find((h) => h.seq === top) as AnchoredCheckpoint);
    const signed = 'signature' in claim ? await witnessSignature(claim, log, verifier) : '';
    throw new AuditError(
      'TRUNCATED',
      log.nextSeq - log.firstSeq,
      `the log ends at seq ${lastSeq}, but the audit anchor holds its checkpoint at seq ${top} (${new Date(claim.time).toISOString()}${signed}): the log was cut back and records from seq ${log.nextSeq} on are gone`,
    );
  }
  const bySeq = new Map(log.checkpoints.map((c) => [c.record.seq, c]));
  held.sort((a, b) => a.seq - b.seq);
  const seqs = new Set<number>();
  for (const h of held) {
    seqs.add(h.seq);
    const at = h.seq - log.firstSeq;
    const cp = bySeq.get(h.seq);
    if (cp === undefined) {
      throw new AuditError(
        'ANCHOR_MISMATCH',
        at,
        `the audit anchor holds a checkpoint at seq ${h.seq}, and the log has none there: the log was rewritten after that checkpoint was anchored`,
      );
    }
    const r = cp.record;
    if (r.head !== h.headHash || r.time !== h.time || signatureDigest(r.sig) !== h.signatureDigest) {
      throw new AuditError(
        'ANCHOR_MISMATCH',
        at,
        `the log's checkpoint at seq ${h.seq} is not the one the audit anchor holds (${r.head !== h.headHash ? 'it seals other records' : 'another signature or time'}): the log was rewritten and sealed again`,
        { file: cp.file, line: cp.line },
      );
    }
  }
  return {
    latest: { seq: top, time: (held.at(-1) as AnchoredCheckpoint | undefined)?.time ?? latest?.time ?? 0 },
    matched: seqs.size,
    unanchored: lastSeq - Math.max(top, log.firstSeq - 1),
  };
}

/** " signed by key K", or throws when the witness's claim does not verify with the log's keys. */
async function witnessSignature(latest: AnchorCheckpoint, log: WalkedLog, verifier: CheckpointVerifier | undefined): Promise<string> {
  if (verifier === undefined || log.mode === undefined) return '';
  const message = checkpointMessage({ log: log.logId, size: latest.seq, head: latest.headHash, time: latest.time });
  try {
    const { kid } = await verifier.verifyCheckpoint(log.mode, CHECKPOINT_DOMAIN, message, latest.signature, latest.time);
    return `, signed by key ${kid}`;
  } catch (err) {
    throw new AuditError(
      'ANCHOR_MISMATCH',
      -1,
      `the audit anchor claims a checkpoint at seq ${latest.seq}, beyond the log's end (seq ${log.nextSeq - 1}), but its signature does not verify with these keys: the anchor was written by someone without the log's key, or these are not the log's keys (${(err as Error)?.message ?? String(err)})`,
      { cause: err },
    );
  }
}
