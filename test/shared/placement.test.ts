import fc from 'fast-check';
import t from 'tap';
import { placeKey, type PlacementView } from '../../src/shared/placement.js';
import { fullSlots, loadBound } from '../../src/shared/ring/bounded-load.js';
import { pickSlot, rankSlots } from '../../src/shared/ring/rendezvous.js';

const ALL = (n: number): Uint8Array => new Uint8Array(n).fill(1);

/** A view with every slot in `ready` and the load bound of `loads` and `factor` (none without loads). */
function view(ready: Uint8Array, loads?: number[], factor = 1.25): PlacementView {
  const slotCount = ready.length;
  return loads === undefined ? { slotCount, ready } : { slotCount, ready, full: fullSlots(slotCount, ready, loads, factor, new Uint8Array(slotCount)) };
}

/**
 * The bounded-load algorithm as the paper states it, the oracle: walk the key's
 * ranking, take the first eligible slot under the bound.
 */
function walkRanking(keyHash: number, eligible: Uint8Array, loads: number[], factor: number): { slot: number; overflowed: boolean } {
  const n = eligible.length;
  let total = 0;
  let count = 0;
  for (let slot = 0; slot < n; slot++) {
    if (eligible[slot] !== 1) continue;
    total += loads[slot] as number;
    count++;
  }
  const bound = loadBound(total, count, factor);
  let first = -1;
  for (const slot of rankSlots(keyHash, n)) {
    if (eligible[slot] !== 1) continue;
    if (first === -1) first = slot;
    if ((loads[slot] as number) < bound) return { slot, overflowed: slot !== first };
  }
  return { slot: first, overflowed: false };
}

t.test('no bound, all ready: the key\'s rendezvous choice, no fallback', async (t) => {
  for (let key = 0; key < 200; key++) {
    const hash = (key * 2654435761) >>> 0;
    t.same(placeKey(hash, view(ALL(4))), { slot: pickSlot(hash, 4), fallback: null });
  }
});

t.test('a slot that is not ready: its keys take their next choice, counted as slot-not-ready; other keys stay', async (t) => {
  const ready = Uint8Array.from([1, 0, 1]);
  for (let key = 0; key < 200; key++) {
    const hash = (key * 2654435761 + 3) >>> 0;
    const ranking = rankSlots(hash, 3);
    const choice = placeKey(hash, view(ready));
    if (ranking[0] === 1) t.same(choice, { slot: ranking[1], fallback: 'slot-not-ready' }, `key ${key}`);
    else t.same(choice, { slot: ranking[0], fallback: null }, `key ${key}`);
  }
  t.same(placeKey(5, view(new Uint8Array(3))), { slot: -1, fallback: null }, 'no ready slot');
});

t.test('a pinned slot (a sticky cookie) wins while it is ready and not excluded', async (t) => {
  for (let key = 0; key < 50; key++) {
    t.same(placeKey(key, view(ALL(3)), [], 2), { slot: 2, fallback: null });
    t.same(placeKey(key, view(ALL(3), [0, 0, 100]), [], 2), { slot: 2, fallback: null }, 'even at the load bound');
    t.equal(placeKey(key, view(Uint8Array.from([1, 1, 0])), [], 2).slot, pickSlot(key, 3, Uint8Array.from([1, 1, 0])), 'not ready: placed as without');
    t.not(placeKey(key, view(ALL(3)), [2], 2).slot, 2, 'excluded: placed as without');
    t.equal(placeKey(key, view(ALL(3)), [], 7).slot, pickSlot(key, 3), 'out of range: ignored');
  }
});

t.test('excluded slots (already tried) are never chosen, and skipping them is no fallback', async (t) => {
  for (let key = 0; key < 200; key++) {
    const ranking = rankSlots(key, 4);
    const choice = placeKey(key, view(ALL(4)), [ranking[0] as number]);
    t.same(choice, { slot: ranking[1], fallback: null });
    t.equal(placeKey(key, view(ALL(4)), [0, 1, 2, 3]).slot, -1);
  }
});

t.test('under the bound a key goes to its first choice (nothing moves)', async (t) => {
  for (let key = 0; key < 200; key++) {
    const hash = (key * 2654435761) >>> 0;
    t.same(placeKey(hash, view(ALL(4), [3, 3, 3, 3])), { slot: pickSlot(hash, 4), fallback: null }, `key ${key}`);
  }
});

t.test('a slot at the bound is skipped: the key takes its next choice in rank order, counted as over-load', async (t) => {
  for (let key = 0; key < 200; key++) {
    const hash = (key * 2654435761 + 7) >>> 0;
    const ranking = rankSlots(hash, 3);
    const loads = [2, 2, 2];
    loads[ranking[0] as number] = 10; // total 14, bound ceil(1.25 × 15 / 3) = 7: first is over
    t.same(placeKey(hash, view(ALL(3), loads)), { slot: ranking[1], fallback: 'over-load' }, `key ${key} goes to its second choice`);
  }
});

t.test('property: the mask of full slots places every key where walking its ranking would', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.array(fc.record({ load: fc.nat({ max: 50 }), ready: fc.boolean() }), { minLength: 1, maxLength: 16 }),
      fc.double({ min: 1, max: 3, noNaN: true }),
      (hash, slots, factor) => {
        const ready = Uint8Array.from(slots, (slot) => (slot.ready ? 1 : 0));
        const loads = slots.map((slot) => slot.load);
        const choice = placeKey(hash, view(ready, loads, factor));
        const oracle = walkRanking(hash, ready, loads, factor);
        return choice.slot === oracle.slot && (choice.fallback === 'over-load') === oracle.overflowed;
      },
    ),
  );
  t.pass('held for every generated case');
});

t.test('property: placement never fails and never exceeds the bound (factor ≥ 1)', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 16 }),
      fc.double({ min: 1, max: 3, noNaN: true }),
      (hash, loads, factor) => {
        const n = loads.length;
        const slot = placeKey(hash, view(ALL(n), loads, factor)).slot;
        const bound = loadBound(loads.reduce((a, b) => a + b, 0), n, factor);
        return slot >= 0 && slot < n && (loads[slot] as number) < bound;
      },
    ),
  );
  t.pass('held for every generated case');
});

t.test('property: placing connections one by one keeps every slot within the bound', async (t) => {
  // The paper's guarantee, simulated: sequential arrivals, loads as they grow.
  const loads = [0, 0, 0, 0];
  const factor = 1.25;
  for (let i = 0; i < 400; i++) {
    // Skewed keys: half of all arrivals share one key.
    const hash = i % 2 === 0 ? 42 : (i * 2654435761) >>> 0;
    const slot = placeKey(hash, view(ALL(4), loads, factor)).slot;
    loads[slot] = (loads[slot] as number) + 1;
    const total = loads.reduce((a, b) => a + b, 0);
    t.ok(Math.max(...loads) <= Math.ceil((factor * total) / 4), `after ${total}: ${loads.join(',')}`);
  }
});

t.test('the same inputs always give the same slot (deterministic overflow)', async (t) => {
  const loads = [9, 0, 4, 7];
  for (let key = 0; key < 100; key++) t.same(placeKey(key, view(ALL(4), loads, 1.1)), placeKey(key, view(ALL(4), loads, 1.1)));
});
