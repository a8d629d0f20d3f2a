import { MAX_SLOTS, pickSlot } from './ring/rendezvous.js';

/**
 * Where a key goes: the one decision both processes make. The master makes it
 * for every new or handed-back connection with its live loads; a worker makes
 * it for every later request on a reused connection with the pool view the
 * master last sent it. Same function, same inputs: the same slot.
 *
 * Bounded load (`balanceFactor`) enters as a mask of full slots rather than as
 * loads: the bound (`loadBound`) does not depend on the key, so "skip slots
 * at the bound in the key's rendezvous order" is "the key's first choice among
 * slots that are ready and not full". The master computes the mask
 * (`fullSlots`, src/shared/ring/bounded-load.ts); the workers receive it.
 */

/** What placement reads: the slots, which take connections, which are at the load bound. */
export interface PlacementView {
  readonly slotCount: number;
  /** `ready[slot] === 1`: the slot's worker takes connections. */
  readonly ready: Uint8Array;
  /** `full[slot] === 1`: at the load bound (`balanceFactor`); absent when there is no bound. */
  readonly full?: Uint8Array | undefined;
}

/** Why a connection did not go to its key's first choice. */
export type FallbackReason = 'slot-not-ready' | 'over-load';

/** Where a key goes. */
export interface SlotChoice {
  /** The slot, or -1 when no eligible slot is ready. */
  readonly slot: number;
  /** Set when the key's first choice was skipped (counted as a fallback). */
  readonly fallback: FallbackReason | null;
}

const NO_SLOTS: readonly number[] = [];
/** Scratch mask (placement is synchronous, so one suffices). */
const open = new Uint8Array(MAX_SLOTS);

/**
 * The slot for `keyHash`: `pinned` (the slot a valid sticky cookie names) when
 * it is ready and not excluded; else the key's first choice among ready slots
 * not in `exclude` (slots this connection was already sent to) and not full.
 * When every such slot is full (only possible with exclusions), full ones
 * count again rather than refusing the connection.
 */
export function placeKey(keyHash: number, view: PlacementView, exclude: readonly number[] = NO_SLOTS, pinned = -1): SlotChoice {
  const { slotCount, ready, full } = view;
  if (pinned >= 0 && pinned < slotCount && ready[pinned] === 1 && !exclude.includes(pinned)) return { slot: pinned, fallback: null };
  // The common case, no exclusion and no bound: one ring walk over the ready mask.
  if (exclude.length === 0 && full === undefined) return withReason(keyHash, view, pickSlot(keyHash, slotCount, ready), false);
  const excluded = exclude.length > 0;
  open.set(ready.subarray(0, slotCount));
  for (const slot of exclude) if (slot < slotCount) open[slot] = 0;
  if (full === undefined) return withReason(keyHash, view, pickSlot(keyHash, slotCount, open), excluded);
  const unbounded = pickSlot(keyHash, slotCount, open);
  for (let slot = 0; slot < slotCount; slot++) if (full[slot] === 1) open[slot] = 0;
  const bounded = pickSlot(keyHash, slotCount, open);
  if (bounded === -1 || bounded === unbounded) return withReason(keyHash, view, unbounded, excluded);
  return { slot: bounded, fallback: 'over-load' };
}

/**
 * `slot` with 'slot-not-ready' when the key's first choice was skipped because
 * it is not ready (not counted on a re-route: the slots it skips were tried).
 */
function withReason(keyHash: number, view: PlacementView, slot: number, excluded: boolean): SlotChoice {
  if (slot === -1 || excluded) return { slot, fallback: null };
  // Only when some slot is not ready can the first choice have been skipped: a second walk only then.
  let allReady = true;
  for (let s = 0; s < view.slotCount; s++) {
    if (view.ready[s] !== 1) {
      allReady = false;
      break;
    }
  }
  return allReady || pickSlot(keyHash, view.slotCount) === slot ? { slot, fallback: null } : { slot, fallback: 'slot-not-ready' };
}
