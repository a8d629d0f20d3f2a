/**
 * limits.perClient's table: memory per tracked client and admits per second.
 *
 *   npm run build && node --expose-gc dist/bench/client-table.js
 */
import { ClientTable } from '../src/shared/limits/client-table.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

function address(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

for (const entries of [10_000, 100_000, 1_000_000]) {
  gc();
  const before = process.memoryUsage().heapUsed;
  const table = new ClientTable({ maxOpen: 10, ratePerSecond: 10, burst: 20, maxEntries: entries });
  for (let i = 0; i < entries; i++) table.admit(address(i), i);
  gc();
  const perEntry = (process.memoryUsage().heapUsed - before) / entries;
  // Admits over twice the table's size: every one a miss that evicts (a spoofed flood).
  const rounds = Math.min(2_000_000, entries * 2);
  const start = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) table.admit(address(entries + i), entries + i);
  const floodNs = Number(process.hrtime.bigint() - start) / rounds;
  // The common case: the same 1000 clients again and again.
  const hitStart = process.hrtime.bigint();
  for (let i = 0; i < 1_000_000; i++) table.admit(address(entries + rounds - 1 - (i % 1000)), entries + rounds + i);
  const hitNs = Number(process.hrtime.bigint() - hitStart) / 1_000_000;
  console.log(`${entries} entries: ${perEntry.toFixed(0)} B each (${((perEntry * entries) / 1048576).toFixed(1)} MiB); ${floodNs.toFixed(0)} ns per admit of a new client (evicting), ${hitNs.toFixed(0)} ns per admit of a known one`);
}
