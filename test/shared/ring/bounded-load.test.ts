import fc from 'fast-check';
import t from 'tap';
import { fullSlots, loadBound } from '../../../src/shared/ring/bounded-load.js';

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

t.test('fullSlots marks the ready slots at the bound; slots not ready are neither full nor counted', async (t) => {
  const out = new Uint8Array(4).fill(7);
  // Ready: 0, 2, 3 with loads 10, 2, 2: total 14, bound ceil(1.25 × 15 / 3) = 7.
  t.same(Array.from(fullSlots(4, Uint8Array.from([1, 0, 1, 1]), [10, 1000, 2, 2], 1.25, out)), [1, 0, 0, 0]);
  t.same(Array.from(fullSlots(3, Uint8Array.from([1, 1, 1]), [0, 0, 0], 1, new Uint8Array(3))), [0, 0, 0], 'empty slots are under any bound');
  t.same(Array.from(fullSlots(2, new Uint8Array(2), [5, 5], 1, new Uint8Array(2))), [0, 0], 'no ready slot, nothing full');
});

t.test('property: for factor ≥ 1 some ready slot is always under the bound', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 16 }), fc.double({ min: 1, max: 3, noNaN: true }), (loads, factor) => {
      const n = loads.length;
      const full = fullSlots(n, new Uint8Array(n).fill(1), loads, factor, new Uint8Array(n));
      return full.includes(0);
    }),
  );
  t.pass('held for every generated case');
});
