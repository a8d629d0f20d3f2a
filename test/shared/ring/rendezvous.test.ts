import t from 'tap';
import { hashKey } from '../../../src/shared/ring/farmhash.js';
import { MAX_SLOTS, pickSlot, rankSlots, score } from '../../../src/shared/ring/rendezvous.js';

/** Deterministic key hashes for a run: farmhash of "client-<i>" (no randomness, reproducible). */
function keyHashes(count: number): Uint32Array {
  const hashes = new Uint32Array(count);
  for (let i = 0; i < count; i++) hashes[i] = hashKey(`client-${i}`);
  return hashes;
}

const KEYS = keyHashes(1_000_000);

t.test('load spread: max/mean <= 1.05 with 1M keys for N = 2..64', async (t) => {
  // One pass per key: the winner among slots 0..N-1 is the running maximum of
  // the scores, so the placement for every N comes from 64 scores per key.
  const loads = Array.from({ length: 65 }, (_, slots) => new Uint32Array(slots));
  for (const hash of KEYS) {
    let best = -1;
    let bestSlot = -1;
    for (let slot = 0; slot < 64; slot++) {
      const s = score(hash, slot);
      if (s > best) {
        best = s;
        bestSlot = slot;
      }
      if (slot >= 1) loads[slot + 1]![bestSlot]!++;
    }
  }
  let worst = 0;
  for (let slots = 2; slots <= 64; slots++) {
    const ratio = Math.max(...loads[slots]!) / (KEYS.length / slots);
    worst = Math.max(worst, ratio);
    if (ratio > 1.05) t.fail(`N=${slots}: max/mean ${ratio.toFixed(4)}`);
  }
  t.ok(worst <= 1.05, `worst max/mean over N=2..64 is ${worst.toFixed(4)}`);
  // pickSlot is the same running maximum.
  for (const hash of KEYS.subarray(0, 20_000)) {
    const ranked = rankSlots(hash, 64);
    if (pickSlot(hash, 64) !== ranked[0]) t.fail('pickSlot disagrees with the scores');
  }
});

t.test('adding slot N moves <= 1.1/(N+1) of keys, all to the new slot', async (t) => {
  const sample = KEYS.subarray(0, 200_000);
  for (let slots = 1; slots <= 64; slots++) {
    let moved = 0;
    let movedElsewhere = 0;
    for (const hash of sample) {
      const before = pickSlot(hash, slots);
      const after = pickSlot(hash, slots + 1);
      if (before !== after) {
        moved++;
        if (after !== slots) movedElsewhere++;
      }
    }
    const share = moved / sample.length;
    if (share > 1.1 / (slots + 1)) t.fail(`N=${slots}->${slots + 1}: moved ${share.toFixed(4)}`);
    if (movedElsewhere !== 0) t.fail(`N=${slots}->${slots + 1}: ${movedElsewhere} keys moved between old slots`);
  }
  t.pass('checked every N from 1 to 64');
});

t.test('a slot that is not eligible sends only its keys to their next choice', async (t) => {
  const slots = 8;
  const eligible = new Uint8Array(slots).fill(1);
  eligible[3] = 0;
  let movedOthers = 0;
  let fallbackMismatch = 0;
  for (const hash of KEYS.subarray(0, 100_000)) {
    const first = pickSlot(hash, slots);
    const fallback = pickSlot(hash, slots, eligible);
    if (first !== 3 && fallback !== first) movedOthers++;
    if (first === 3 && fallback !== rankSlots(hash, slots)[1]) fallbackMismatch++;
  }
  t.equal(movedOthers, 0, 'keys of other slots never move');
  t.equal(fallbackMismatch, 0, 'the fallback is the second choice of the same hash');
  t.equal(pickSlot(123, slots, new Uint8Array(slots)), -1, 'no eligible slot -> -1');
  t.equal(pickSlot(123, 0), -1, 'no slot -> -1');
});

t.test('rankSlots is the preference order pickSlot follows', async (t) => {
  for (const hash of KEYS.subarray(0, 2000)) {
    const ranked = rankSlots(hash, 16);
    t.equal(ranked[0], pickSlot(hash, 16));
    t.same([...ranked].sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i), 'a permutation of the slots');
    for (let i = 1; i < ranked.length; i++) {
      if (score(hash, ranked[i - 1]!) < score(hash, ranked[i]!)) t.fail('scores must not increase');
    }
  }
  t.equal(MAX_SLOTS, 1024);
});

t.test('placement is stable across processes: no random seeds', async (t) => {
  const keys = ['198.51.100.22', '203.0.113.5', 'session-abc', '2001:db8::1'];
  const placements = keys.map((key) => pickSlot(hashKey(key), 4));
  const { execFileSync } = await import('node:child_process');
  const dist = (await import('node:path')).resolve(__dirname, '..', '..', '..', 'dist', 'src', 'shared', 'ring');
  const script = `
    const { hashKey } = require(${JSON.stringify(dist + '/farmhash.js')});
    const { pickSlot } = require(${JSON.stringify(dist + '/rendezvous.js')});
    process.stdout.write(JSON.stringify(${JSON.stringify(keys)}.map((k) => pickSlot(hashKey(k), 4))));
  `;
  const other = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as number[];
  t.same(other, placements, 'a fresh process (the built code) places the same keys on the same slots');
});
