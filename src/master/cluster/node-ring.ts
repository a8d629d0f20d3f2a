import farmhash from 'farmhash';
import { fmix32 } from '../../shared/ring/rendezvous.js';

/**
 * The first tier of placement with many nodes: rendezvous hashing of a key
 * hash over member node ids (the second tier, over the owner's worker slots,
 * is src/shared/placement.ts). Every node that has the same member list,
 * in whatever order, computes the same owner: a member's weight depends only
 * on its id string and the key, as Maglev and Katran build one table from one
 * backend list on every balancer. Adding a member moves only the keys it now
 * wins; removing one moves only its own keys.
 */

/** A member's seed: from its id, the same on every machine (farmhash fingerprint32 is unseeded and portable). */
function seedOf(id: string): number {
  return farmhash.fingerprint32(`sticky-session-ts node ${id}`) >>> 0;
}

/**
 * murmur3's finaliser over key and member, with a multiply first so that this
 * tier's scores are not the slot tier's (which mixes `keyHash ^ slotSeed`):
 * the keys one node owns still spread evenly over its slots.
 */
function nodeScore(keyHash: number, seed: number): number {
  let h = Math.imul((keyHash ^ seed) >>> 0, 0xcc9e2d51);
  h ^= h >>> 15;
  return fmix32(Math.imul(h, 0x1b873593));
}

/** An immutable set of eligible members to place keys on. */
export class NodeRing {
  /** Ids sorted, so that ties (equal 32-bit scores) go to the lower id on every node. */
  readonly ids: readonly string[];
  private readonly seeds: Uint32Array;

  constructor(ids: Iterable<string>) {
    this.ids = [...new Set(ids)].sort();
    this.seeds = Uint32Array.from(this.ids, seedOf);
  }

  /** The owner of `keyHash`, skipping ids in `exclude`; null when no member is left. */
  owner(keyHash: number, exclude?: ReadonlySet<string>): string | null {
    let best = -1;
    let bestScore = -1;
    for (let i = 0; i < this.ids.length; i++) {
      if (exclude !== undefined && exclude.has(this.ids[i] as string)) continue;
      const score = nodeScore(keyHash, this.seeds[i] as number);
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    return best === -1 ? null : (this.ids[best] as string);
  }
}
