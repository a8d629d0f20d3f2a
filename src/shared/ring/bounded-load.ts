/**
 * Bounded-load consistent hashing ("Consistent Hashing with Bounded Loads",
 * Mirrokni, Thorup & Zadimoghaddam 2016; HAProxy's `hash-balance-factor`).
 *
 * A key walks its own preference order (its rendezvous ranking) and takes the
 * first eligible slot that is under the bound. The bound is the same for every
 * key, so that is the key's first choice among the slots not at the bound:
 * this module makes that mask, src/shared/placement.ts places with it.
 * The bound follows HAProxy's `chash_server_is_eligible()`: a slot may take one more connection while
 * `load < ceil(factor × (total + 1) / slots)`, where `total` is the load of the
 * eligible slots and `+ 1` is the connection being placed. Because the least
 * loaded slot always has `load ≤ total / slots < ceil((total + 1) / slots)`,
 * some slot is always under the bound for any `factor ≥ 1`, so placement never
 * fails and overflow goes to the key's next choice, deterministically.
 *
 * Pure: no I/O, no clock; loads are given.
 */

/** The per-slot bound: `ceil(factor × (total + 1) / slots)`. */
export function loadBound(totalLoad: number, eligibleSlots: number, factor: number): number {
  if (eligibleSlots <= 0) return 0;
  // The tiny epsilon keeps float noise (1.1 × 10 = 11.000000000000002) from adding a whole connection.
  return Math.ceil((factor * (totalLoad + 1)) / eligibleSlots - 1e-9);
}

/**
 * Marks in `out` the ready slots at the load bound for `factor`
 * (`loads[slot] ≥ ceil(factor × (total + 1) / ready slots)`, HAProxy's
 * `chash_server_is_eligible()`); clears the others. Returns `out`.
 */
export function fullSlots(slotCount: number, ready: Uint8Array, loads: ArrayLike<number>, factor: number, out: Uint8Array): Uint8Array {
  let total = 0;
  let count = 0;
  for (let slot = 0; slot < slotCount; slot++) {
    if (ready[slot] !== 1) continue;
    total += loads[slot] ?? 0;
    count++;
  }
  const bound = loadBound(total, count, factor);
  for (let slot = 0; slot < slotCount; slot++) out[slot] = ready[slot] === 1 && (loads[slot] ?? 0) >= bound ? 1 : 0;
  return out;
}
