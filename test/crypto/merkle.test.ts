import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_BATCH, decodeProof, encodeProof } from '../../src/crypto/batch-proof.ts';
import { buildTree, leafHash, nodeHash, pathLength, rootFromPath } from '../../src/crypto/merkle.ts';
import { rejectsWith } from './helpers.ts';

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** RFC 9162 §2.1.1 MTH, written out independently of merkle.ts. */
function referenceRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return sha(Uint8Array.of(0), leaves[0] as Uint8Array);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Uint8Array.of(1), referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => new TextEncoder().encode(`leaf-${i}`));

describe('the batch Merkle tree (RFC 9162 shape, SHA-256, 0x00 leaf / 0x01 node prefixes)', () => {
  it("has the RFC 9162 root for every size from 1 to 40, and every leaf's path leads to it", () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = leavesOf(n);
      const { root, paths } = buildTree(leaves);
      expect(Buffer.from(root).toString('hex'), `n=${n}`).toBe(Buffer.from(referenceRoot(leaves)).toString('hex'));
      leaves.forEach((leaf, i) => {
        expect(paths[i]!.length).toBe(pathLength(i, n));
        expect(rootFromPath(leaf, i, n, paths[i]!)).toEqual(root);
      });
    }
  });

  it('keeps leaves and inner nodes apart: an inner node presented as a leaf does not give the root', () => {
    const leaves = leavesOf(4);
    const { root } = buildTree(leaves);
    // The left inner node's preimage (left ‖ right child hashes) as a "leaf" of a 2-leaf tree.
    const l = leafHash(leaves[0]!);
    const r = leafHash(leaves[1]!);
    const inner = new Uint8Array([...l, ...r]);
    const rightHalf = nodeHash(leafHash(leaves[2]!), leafHash(leaves[3]!));
    expect(rootFromPath(inner, 0, 2, [rightHalf])).not.toEqual(root);
    expect(nodeHash(l, r)).not.toEqual(leafHash(inner));
  });

  it('refuses any path of the wrong length, an index out of range, and a different (index, count) gives another root', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.nat(), (n, a, b) => {
        const leaves = leavesOf(n);
        const { root, paths } = buildTree(leaves);
        const i = a % n;
        const path = paths[i]!;
        expect(rootFromPath(leaves[i]!, i, n, [...path, new Uint8Array(32)])).toBeUndefined();
        if (path.length > 0) expect(rootFromPath(leaves[i]!, i, n, path.slice(0, -1))).toBeUndefined();
        expect(rootFromPath(leaves[i]!, n, n, path)).toBeUndefined();
        const j = b % n;
        if (j !== i) {
          const moved = rootFromPath(leaves[i]!, j, n, path);
          if (moved) expect(moved).not.toEqual(root);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('proof bytes round-trip, and a proof whose length does not fit (index, count) is BAD_FORMAT', async () => {
    const { paths } = buildTree(leavesOf(5));
    const bytes = encodeProof(5, 4, paths[4]!);
    expect(decodeProof(bytes)).toEqual({ count: 5, index: 4, path: paths[4] });
    const bad = (b: Uint8Array) => rejectsWith((async () => decodeProof(b))(), 'BAD_FORMAT');
    await bad(bytes.subarray(0, bytes.length - 32));
    await bad(new Uint8Array([...bytes, ...new Uint8Array(32)]));
    await bad(bytes.subarray(0, bytes.length - 1));
    await bad(encodeProof(5, 5, paths[4]!));
    await bad(encodeProof(0, 0, []));
    await bad(encodeProof(MAX_BATCH + 1, 0, []));
    await bad(Uint8Array.of(0x02, ...bytes.subarray(1)));
    await bad(new Uint8Array(0));
  });
});
