import { rankSlots } from './rendezvous.js';

/**
 * Bounded-load consistent hashing ("Consistent Hashing with Bounded Loads",
 * Mirrokni, Thorup & Zadimoghaddam 2016; HAProxy's `hash-balance-factor`).
 *
 * A key walks its own preference order (its rendezvous ranking) and takes the
 * first eligible slot that is under the bound. The bound follows HAProxy's
 * `chash_server_is_eligible()`: a slot may take one more connection while
 * `load < ceil(factor × (total + 1) / slots)`, where `total` is the load of the
 * eligible slots and `+ 1` is the connection being placed. Because the least
 * loaded slot always has `load ≤ total / slots < ceil((total + 1) / slots)`,
 * some slot is always under the bound for any `factor ≥ 1`, so placement never
 * fails and overflow goes to the key's next choice, deterministically.
 *
 * Pure: no I/O, no clock; loads are given.
 */

/** Where a key goes under the load bound. */
export interface BoundedChoice {
  /** The chosen slot, or -1 when no slot is eligible. */
  readonly slot: number;
  /** True when the key's first eligible slot was over the bound and skipped. */
  readonly overflowed: boolean;
  /** The bound used (connections a slot may hold before this one is placed). */
  readonly bound: number;
}

/** The per-slot bound: `ceil(factor × (total + 1) / slots)`. */
export function loadBound(totalLoad: number, eligibleSlots: number, factor: number): number {
  if (eligibleSlots <= 0) return 0;
  // The tiny epsilon keeps float noise (1.1 × 10 = 11.000000000000002) from adding a whole connection.
  return Math.ceil((factor * (totalLoad + 1)) / eligibleSlots - 1e-9);
}

/**
 * The slot for `keyHash` among `0 .. slotCount-1` with `eligible[slot] === 1`,
 * skipping slots whose `loads[slot]` has reached the bound for `factor`.
 */
export function pickBounded(
  keyHash: number,
  slotCount: number,
  eligible: ArrayLike<number>,
  loads: ArrayLike<number>,
  factor: number,
): BoundedChoice {
  let total = 0;
  let count = 0;
  for (let slot = 0; slot < slotCount; slot++) {
    if (eligible[slot] !== 1) continue;
    total += loads[slot] ?? 0;
    count++;
  }
  const bound = loadBound(total, count, factor);
  if (count === 0) return { slot: -1, overflowed: false, bound };
  let first = -1;
  for (const slot of rankSlots(keyHash, slotCount)) {
    if (eligible[slot] !== 1) continue;
    if (first === -1) first = slot;
    if ((loads[slot] ?? 0) < bound) return { slot, overflowed: slot !== first, bound };
  }
  // Unreachable for factor ≥ 1 (see above); a caller passing factor < 1 still gets a slot.
  return { slot: first, overflowed: false, bound };
}
