/**
 * Rendezvous (highest-random-weight) hashing over stable worker slots
 * (Thaler & Ravishankar 1998). Each slot gets a score for a key; the key goes to
 * the highest-scoring eligible slot. Why this and not `hash % N`:
 * - adding slot N moves only the keys whose new top score is N (≈ 1/(N+1) of them),
 *   and no key moves between the old slots;
 * - removing or skipping a slot (dead, draining, over its load bound) sends only
 *   its own keys to their next choice of the same hash — a deterministic
 *   fallback — and they come back when the slot is eligible again.
 * There are no random seeds: a restarted master maps every key to the same slot.
 *
 * The key hash is computed elsewhere (`hashKey`, injected farmhash); this module
 * is pure arithmetic on 32-bit integers.
 */

/** murmur3's 32-bit finaliser: a bijective avalanche mix. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Largest slot count the ring supports (a slot id must fit the seed table). */
export const MAX_SLOTS = 1024;

/** Per-slot seeds, fixed forever: slot ids, not process ids, decide placement. */
const SLOT_SEEDS = new Uint32Array(MAX_SLOTS);
for (let slot = 0; slot < MAX_SLOTS; slot++) SLOT_SEEDS[slot] = fmix32(Math.imul(slot + 1, 0x9e3779b9));

/** The score of `slot` for a key hash: higher wins. */
export function score(keyHash: number, slot: number): number {
  return fmix32((keyHash ^ (SLOT_SEEDS[slot] as number)) >>> 0);
}

/**
 * The slot for a key among slots `0 .. slotCount-1`, skipping those whose
 * `eligible[slot]` is 0 (when `eligible` is given). Returns -1 when no slot is
 * eligible. Ties (two equal 32-bit scores) go to the lower slot, deterministically.
 */
export function pickSlot(keyHash: number, slotCount: number, eligible?: Uint8Array): number {
  let best = -1;
  let bestScore = -1;
  const seed = keyHash >>> 0;
  for (let slot = 0; slot < slotCount; slot++) {
    if (eligible !== undefined && eligible[slot] === 0) continue;
    let h = (seed ^ (SLOT_SEEDS[slot] as number)) >>> 0;
    // fmix32 inlined: this loop is the ring's hot path.
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    h >>>= 0;
    if (h > bestScore) {
      bestScore = h;
      best = slot;
    }
  }
  return best;
}

/**
 * All slots `0 .. slotCount-1` in this key's preference order (first choice
 * first). Used where a caller needs more than the best eligible slot, e.g.
 * bounded-load placement and tests.
 */
export function rankSlots(keyHash: number, slotCount: number): number[] {
  const slots = Array.from({ length: slotCount }, (_, slot) => slot);
  const scores = slots.map((slot) => score(keyHash, slot));
  // Array#sort is stable, so equal scores keep the lower slot first, as pickSlot does.
  return slots.sort((a, b) => (scores[b] as number) - (scores[a] as number));
}
