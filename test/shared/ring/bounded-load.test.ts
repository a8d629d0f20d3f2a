import fc from 'fast-check';
import t from 'tap';
import { loadBound, pickBounded } from '../../../src/shared/ring/bounded-load.js';
import { pickSlot, rankSlots } from '../../../src/shared/ring/rendezvous.js';

const ALL = (n: number): Uint8Array => new Uint8Array(n).fill(1);

t.test('loadBound is ceil(factor × (total + 1) / slots), HAProxy-style', async (t) => {
  const table = [
    { total: 0, slots: 2, factor: 1.25, bound: 1 },
    { total: 9, slots: 2, factor: 1, bound: 5 },
    { total: 10, slots: 2, factor: 1, bound: 6 },
    { total: 9, slots: 1, factor: 1.1, bound: 11 },
    { total: 99, slots: 4, factor: 1.25, bound: 32 },
    { total: 5, slots: 0, factor: 2, bound: 0 },
  ];
  for (const row of table) t.equal(loadBound(row.total, row.slots, row.factor), row.bound, JSON.stringify(row));
});

t.test('under the bound a key goes to its first choice (nothing moves)', async (t) => {
  for (let key = 0; key < 200; key++) {
    const hash = (key * 2654435761) >>> 0;
    const choice = pickBounded(hash, 4, ALL(4), [3, 3, 3, 3], 1.25);
    t.equal(choice.slot, pickSlot(hash, 4), `key ${key}`);
    t.equal(choice.overflowed, false);
  }
});

t.test('a slot at the bound is skipped: the key takes its next choice in rank order', async (t) => {
  let overflowedKeys = 0;
  for (let key = 0; key < 200; key++) {
    const hash = (key * 2654435761 + 7) >>> 0;
    const ranking = rankSlots(hash, 3);
    const first = ranking[0] as number;
    const loads = [2, 2, 2];
    loads[first] = 10; // total 14, bound ceil(1.25 × 15 / 3) = 7: first is over
    const choice = pickBounded(hash, 3, ALL(3), loads, 1.25);
    t.equal(choice.bound, 7);
    t.equal(choice.slot, ranking[1], `key ${key} goes to its second choice`);
    t.equal(choice.overflowed, true);
    overflowedKeys++;
  }
  t.equal(overflowedKeys, 200);
});

t.test('the same inputs always give the same slot (deterministic overflow)', async (t) => {
  const loads = [9, 0, 4, 7];
  for (let key = 0; key < 100; key++) {
    const a = pickBounded(key, 4, ALL(4), loads, 1.1);
    const b = pickBounded(key, 4, ALL(4), loads, 1.1);
    t.same(a, b);
  }
});

t.test('slots that are not eligible are skipped and not counted in the mean', async (t) => {
  const eligible = Uint8Array.from([1, 0, 1]);
  for (let key = 0; key < 100; key++) {
    const choice = pickBounded(key, 3, eligible, [1, 1000, 1], 1.25);
    t.not(choice.slot, 1);
    t.equal(choice.bound, 2, 'bound from the two eligible slots only');
  }
  t.same(pickBounded(5, 3, new Uint8Array(3), [0, 0, 0], 1.25), { slot: -1, overflowed: false, bound: 0 });
});

t.test('property: placement never fails and never exceeds the bound (factor ≥ 1)', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 16 }),
      fc.double({ min: 1, max: 3, noNaN: true }),
      (hash, loads, factor) => {
        const n = loads.length;
        const choice = pickBounded(hash, n, ALL(n), loads, factor);
        return choice.slot >= 0 && choice.slot < n && (loads[choice.slot] as number) < choice.bound;
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
    const choice = pickBounded(hash, 4, ALL(4), loads, factor);
    loads[choice.slot] = (loads[choice.slot] as number) + 1;
    const total = loads.reduce((a, b) => a + b, 0);
    t.ok(Math.max(...loads) <= Math.ceil((factor * total) / 4), `after ${total}: ${loads.join(',')}`);
  }
});
