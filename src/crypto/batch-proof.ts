/**
 * The parts of a batch-signed permit beyond the claims (see FORMATS.md):
 *
 *   proof        = 0x01 | leaf count u32 | leaf index u32 | siblings (32 bytes each, leaf level first)
 *   root message = 0x01 | leaf count u32 | Merkle root (32)   — signed in the "permit-batch" domain
 *
 * The leaf count is inside the signed root message, so a proof cannot claim another tree shape.
 */
import { PermitError } from './errors.ts';
import { HASH_BYTES, pathLength } from './merkle.ts';

export const BATCH_DOMAIN = 'permit-batch';
export const PROOF_VERSION = 0x01;
/** Largest batch: 2^16 leaves, so a path has at most 16 siblings and a proof at most 521 bytes. */
export const MAX_BATCH = 65_536;
const PROOF_HEADER = 9;

export interface BatchProof {
  count: number;
  index: number;
  path: Uint8Array[];
}

export function encodeProof(count: number, index: number, path: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(PROOF_HEADER + HASH_BYTES * path.length);
  const view = new DataView(out.buffer);
  out[0] = PROOF_VERSION;
  view.setUint32(1, count);
  view.setUint32(5, index);
  path.forEach((p, i) => {
    out.set(p, PROOF_HEADER + HASH_BYTES * i);
  });
  return out;
}

/** Strict structural decode: the path length must be exactly the one (index, count) gives. Throws BAD_FORMAT. */
export function decodeProof(bytes: Uint8Array): BatchProof {
  const bad = (why: string) => new PermitError('BAD_FORMAT', `batch proof is invalid: ${why}`);
  if (bytes.length < PROOF_HEADER || bytes[0] !== PROOF_VERSION) throw bad('unknown version');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(1);
  const index = view.getUint32(5);
  if (count < 1 || count > MAX_BATCH) throw bad(`leaf count ${count} out of range`);
  if (index >= count) throw bad(`leaf index ${index} not below the leaf count ${count}`);
  const siblings = (bytes.length - PROOF_HEADER) / HASH_BYTES;
  if (!Number.isInteger(siblings) || siblings !== pathLength(index, count))
    throw bad(`a path for leaf ${index} of ${count} has ${pathLength(index, count)} siblings`);
  const path: Uint8Array[] = [];
  for (let i = 0; i < siblings; i++) path.push(bytes.subarray(PROOF_HEADER + HASH_BYTES * i, PROOF_HEADER + HASH_BYTES * (i + 1)));
  return { count, index, path };
}

export function rootMessage(count: number, root: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + HASH_BYTES);
  out[0] = PROOF_VERSION;
  new DataView(out.buffer).setUint32(1, count);
  out.set(root, 5);
  return out;
}
