/**
 * Ring lookup: `pickSlot` (src/shared/ring/rendezvous.ts) with the key already hashed,
 * at N = 2, 4, 8, 16 slots, with the pool's ready mask as the balancer passes
 * it and without; then `hashKey` + `pickSlot` for a typical IPv4 key string
 * (what one connection costs in the master). A bounded number of lookups,
 * printing lookups/s; the target is ≥ 10M/s at N ≤ 16.
 *
 *   npm run build && node dist/bench/ring.js [lookups, default 20000000]
 */
import { hashKey } from '../src/shared/ring/farmhash.js';
import { MAX_SLOTS, pickSlot } from '../src/shared/ring/rendezvous.js';

const LOOKUPS = Math.max(1_000_000, Number(process.argv[2] ?? 20_000_000) | 0);
/** Distinct pre-hashed keys, cycled (a power of two so the index is a mask). */
const KEYS = 1 << 16;

const hashes = new Uint32Array(KEYS);
let state = 0x2545f491;
for (let i = 0; i < KEYS; i++) {
  // xorshift32: reproducible pseudo-random key hashes.
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  hashes[i] = state >>> 0;
}
const readyMask = new Uint8Array(MAX_SLOTS).fill(1);

function run(name: string, lookups: number, lookup: (i: number) => number): void {
  // Warm-up so the timed loop measures optimised code; the checksum keeps the work live.
  let checksum = 0;
  for (let i = 0; i < 200_000; i++) checksum += lookup(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < lookups; i++) checksum += lookup(i);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = lookups / seconds;
  console.log(`${name.padEnd(36)} ${(rate / 1e6).toFixed(1).padStart(7)} M lookups/s  ${((seconds / lookups) * 1e9).toFixed(1).padStart(6)} ns/lookup  (checksum ${checksum})`);
}

console.log(`node ${process.version}; ${LOOKUPS} lookups per line over ${KEYS} distinct key hashes\n`);
for (const slots of [2, 4, 8, 16]) {
  run(`pickSlot N=${slots}, ready mask`, LOOKUPS, (i) => pickSlot(hashes[i & (KEYS - 1)] as number, slots, readyMask));
  run(`pickSlot N=${slots}, no mask`, LOOKUPS, (i) => pickSlot(hashes[i & (KEYS - 1)] as number, slots));
}
const keys = Array.from({ length: 1000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
run('hashKey + pickSlot N=2 (IPv4 string)', Math.floor(LOOKUPS / 10), (i) => pickSlot(hashKey(keys[i % 1000] as string), 2, readyMask));
