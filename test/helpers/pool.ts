import { hashKey } from '../../src/shared/ring/farmhash.js';
import { rankSlots } from '../../src/shared/ring/rendezvous.js';
import { demoGet, type DemoAnswer } from './balancer.js';

/** `count` distinct client addresses, used as X-Forwarded-For keys. */
export function clientKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
}

/** Where the demo app says one key landed. */
export interface Landing {
  readonly worker: number;
  readonly pid: number;
}

/** One request per key (fresh connection each, `concurrency` at a time); key → where it landed. */
export async function mapKeys(port: number, keys: readonly string[], concurrency = 6): Promise<Map<string, Landing>> {
  const map = new Map<string, Landing>();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      const answer: DemoAnswer = await demoGet(port, { 'x-forwarded-for': key });
      if (answer.key !== key) throw new Error(`expected key ${key}, got ${answer.key}`);
      map.set(key, { worker: answer.worker, pid: answer.pid });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return map;
}

/** A key's slots in preference order for `slots` workers (the same ring the master uses). */
export function preference(key: string, slots: number): number[] {
  return rankSlots(hashKey(key), slots);
}

/** `perSlot` X-Forwarded-For keys per slot whose first choice is that slot: keys[slot]. */
export function keysBySlot(slots: number, perSlot: number): string[][] {
  const bySlot: string[][] = Array.from({ length: slots }, () => []);
  for (const key of clientKeys(500)) {
    const list = bySlot[preference(key, slots)[0] as number] as string[];
    if (list.length < perSlot) list.push(key);
  }
  return bySlot;
}
