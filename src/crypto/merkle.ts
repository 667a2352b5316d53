/**
 * The Merkle tree behind batch-signed permits: RFC 9162 (Certificate Transparency v2) shape and
 * inclusion proofs over SHA-256, with the leaf/inner-node prefixes 0x00/0x01 so no inner node can
 * pass for a leaf or the reverse. The tree of n leaves splits at the largest power of two below
 * n, so no node is ever duplicated (no CVE-2012-2459 style ambiguity), and a proof has exactly one
 * valid length for a given (index, count): the verifier consumes it exactly or refuses it.
 */
import { hash } from 'node:crypto';

export const HASH_BYTES = 32;
const LEAF = 0x00;
const NODE = 0x01;

// One-shot hashes over one buffer: less than half the cost of a createHash chain per node, and a
// batch of n permits hashes 2n - 1 nodes on the event loop.
export function leafHash(leaf: Uint8Array): Uint8Array {
  const input = Buffer.allocUnsafe(1 + leaf.length);
  input[0] = LEAF;
  input.set(leaf, 1);
  return sha256(input);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = Buffer.allocUnsafe(1 + left.length + right.length);
  input[0] = NODE;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return sha256(input);
}

function sha256(input: Buffer): Uint8Array {
  const b = hash('sha256', input, 'buffer') as unknown as Buffer;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The root over `leaves` and, for each leaf, its inclusion path (siblings, leaf level first). */
export function buildTree(leaves: readonly Uint8Array[]): { root: Uint8Array; paths: Uint8Array[][] } {
  const n = leaves.length;
  if (n < 1) throw new RangeError('a Merkle tree needs at least one leaf');
  const hashes = leaves.map(leafHash);
  const paths: Uint8Array[][] = Array.from({ length: n }, () => []);
  const subtree = (lo: number, hi: number): Uint8Array => {
    if (hi - lo === 1) return hashes[lo] as Uint8Array;
    const k = largestPowerOfTwoBelow(hi - lo);
    const left = subtree(lo, lo + k);
    const right = subtree(lo + k, hi);
    // Deeper levels finished first, so each path grows from the leaf upwards.
    for (let i = lo; i < lo + k; i++) (paths[i] as Uint8Array[]).push(right);
    for (let i = lo + k; i < hi; i++) (paths[i] as Uint8Array[]).push(left);
    return nodeHash(left, right);
  };
  return { root: subtree(0, n), paths };
}

/** The number of siblings an inclusion proof for `index` in a tree of `count` leaves has. */
export function pathLength(index: number, count: number): number {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || index < 0 || index >= count) return -1;
  let length = 0;
  let lo = 0;
  let hi = count;
  while (hi - lo > 1) {
    const k = largestPowerOfTwoBelow(hi - lo);
    if (index < lo + k) hi = lo + k;
    else lo += k;
    length++;
  }
  return length;
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or undefined when the proof does
 * not have exactly the shape (index, count) demands. It does not say the root is trusted: that
 * is the signature's job.
 */
export function rootFromPath(leaf: Uint8Array, index: number, count: number, path: readonly Uint8Array[]): Uint8Array | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || index < 0 || index >= count) return undefined;
  let fn = index;
  let sn = count - 1;
  let r = leafHash(leaf);
  for (const p of path) {
    if (p.length !== HASH_BYTES || sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}

function largestPowerOfTwoBelow(n: number): number {
  // n ≥ 2: the largest power of two strictly less than n.
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
