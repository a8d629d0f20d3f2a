import { randomBytes } from 'node:crypto';
import t from 'tap';
import { NodeRing } from '../../../src/master/cluster/node-ring.js';
import { hashKey } from '../../../src/shared/ring/farmhash.js';
import { pickSlot } from '../../../src/shared/ring/rendezvous.js';

const MEMBERS = ['127.0.0.2:8181', '127.0.0.3:8181', '127.0.0.4:8181'];
/** 100,000 random keys, new every run (an IP-like or cookie-like string each). */
const KEYS = Array.from({ length: 100_000 }, (_, i) => (i % 2 === 0 ? randomBytes(16).toString('base64url') : `198.${i % 256}.${randomBytes(1)[0]}.${randomBytes(1)[0]}`));
const HASHES = KEYS.map((key) => hashKey(key));

function shuffled<T>(list: readonly T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

t.test('every node computes the same owner for every key, whatever the order of its member list', async (t) => {
  const reference = new NodeRing(MEMBERS);
  // Each "node" builds its ring from its own shuffled copy of the list (with a duplicate, as a flaky source may report).
  const rings = Array.from({ length: 5 }, () => new NodeRing(shuffled([...MEMBERS, MEMBERS[1] as string])));
  let agree = 0;
  for (const hash of HASHES) if (rings.every((ring) => ring.owner(hash) === reference.owner(hash))) agree++;
  t.equal(agree, HASHES.length, '100 % agreement');
});

t.test('each member owns about a third of the keys', async (t) => {
  const ring = new NodeRing(MEMBERS);
  const counts = new Map<string, number>();
  for (const hash of HASHES) counts.set(ring.owner(hash) as string, (counts.get(ring.owner(hash) as string) ?? 0) + 1);
  for (const id of MEMBERS) t.ok(Math.abs((counts.get(id) ?? 0) / HASHES.length - 1 / 3) < 0.02, `${id}: ${counts.get(id)}`);
});

t.test('join 3 → 4: 25 % ± 2.5 % of the keys move, every one to the new node', async (t) => {
  const before = new NodeRing(MEMBERS);
  const after = new NodeRing([...MEMBERS, '127.0.0.5:8181']);
  let moved = 0;
  let movedElsewhere = 0;
  for (const hash of HASHES) {
    const was = before.owner(hash);
    const now = after.owner(hash);
    if (was === now) continue;
    moved++;
    if (now !== '127.0.0.5:8181') movedElsewhere++;
  }
  const share = moved / HASHES.length;
  t.ok(share >= 0.225 && share <= 0.275, `${(share * 100).toFixed(2)} % moved`);
  t.equal(movedElsewhere, 0, 'no key moves between the old nodes');
});

t.test("leave: only the leaver's keys move, none between the survivors", async (t) => {
  const before = new NodeRing(MEMBERS);
  const after = new NodeRing(MEMBERS.filter((id) => id !== '127.0.0.3:8181'));
  let survivorsMoved = 0;
  let leaverKeys = 0;
  let stillLeaver = 0;
  for (const hash of HASHES) {
    const was = before.owner(hash);
    if (was === '127.0.0.3:8181') {
      leaverKeys++;
      if (after.owner(hash) === '127.0.0.3:8181') stillLeaver++;
      continue;
    }
    if (after.owner(hash) !== was) survivorsMoved++;
  }
  t.ok(leaverKeys > 0);
  t.equal(stillLeaver, 0, "the leaver's keys all have a new owner");
  t.equal(survivorsMoved, 0);
});

t.test('excluding a member is the same as a ring without it (what an unreachable peer gets)', async (t) => {
  const full = new NodeRing(MEMBERS);
  const without = new NodeRing(MEMBERS.slice(1));
  const exclude = new Set([MEMBERS[0] as string]);
  let same = 0;
  for (const hash of HASHES.slice(0, 10_000)) if (full.owner(hash, exclude) === without.owner(hash)) same++;
  t.equal(same, 10_000);
  t.equal(new NodeRing([]).owner(1), null, 'no member: no owner');
  t.equal(full.owner(1, new Set(MEMBERS)), null, 'every member excluded: no owner');
});

t.test("the keys one node owns spread evenly over its worker slots (the two tiers do not correlate)", async (t) => {
  const ring = new NodeRing(MEMBERS);
  for (const id of MEMBERS) {
    const slots = new Uint32Array(4);
    let owned = 0;
    for (const hash of HASHES) {
      if (ring.owner(hash) !== id) continue;
      owned++;
      slots[pickSlot(hash, 4)]!++;
    }
    for (const count of slots) t.ok(Math.abs(count / owned - 0.25) < 0.02, `${id}: ${[...slots].join(' ')}`);
  }
});
