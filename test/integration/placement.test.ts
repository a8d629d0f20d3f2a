import type net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { getWorkers, pidsBySlot } from '../helpers/admin.js';
import { ROOT, admin, connect, readResponse, startBalancer, type RunningBalancer } from '../helpers/balancer.js';
import { clientKeys, keysBySlot, preference } from '../helpers/pool.js';

/** Answers with x-pid; after an Upgrade it echoes (a connection that stays open without a timeout). */
const REUSE_APP = join(ROOT, 'test', 'fixtures', 'reuse-app.js');

t.setTimeout(180_000);

/** The slot the master would choose for `key` now (GET /owner). */
async function owner(balancer: RunningBalancer, key: string): Promise<number> {
  const answer = await admin(balancer.adminPort as number, `/owner?key=${encodeURIComponent(key)}`);
  return (JSON.parse(answer.body.toString()) as { slot: number }).slot;
}

/** Resolves when `check` holds, polling (bounded). */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * With balanceFactor set, slot 0 is made to hold far more than its share (24
 * upgraded connections placed while it was the only slot, then the pool scaled
 * to 3), so it is at the load bound and its keys' connections go to their
 * second choice. Requests of many clients on one reused connection must land
 * where the master would send each key: the worker places them with the same
 * function, over the view (ready and full slots) the master sends it.
 */
for (const reuse of ['forward', 'handback'] as const) {
  t.test(`key.reuse ${reuse} with balanceFactor: every request lands on the slot the master would choose`, async (t) => {
    const balancer = await startBalancer({ key: { reuse }, balanceFactor: 1.25, workers: { count: 1, app: REUSE_APP } });
    t.teardown(() => balancer.stop());
    const held: net.Socket[] = [];
    t.teardown(() => held.forEach((socket) => socket.destroy()));
    for (const key of clientKeys(24)) {
      const socket = await connect(balancer.port);
      held.push(socket);
      socket.write(`GET /up HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${key}\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n`);
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    }
    const scaled = await admin(balancer.adminPort as number, '/workers', { method: 'PUT', body: JSON.stringify({ count: 3 }) });
    t.equal(scaled.status, 200, 'three workers ready');
    await until('slot 0 to report its 24 connections', async () => ((await getWorkers(balancer.adminPort as number))[0]?.connections ?? 0) >= 24);
    const pids = await pidsBySlot(balancer);
    const slotOf = new Map([...pids].map(([slot, pid]) => [pid, slot]));
    const slot0Keys = (keysBySlot(3, 20)[0] as string[]).slice(0, 20);
    await until('the master to skip slot 0 (at the load bound)', async () => (await owner(balancer, slot0Keys[0] as string)) !== 0);

    // A reused connection (an ALB's): its first request is a key the master sends to slot 1 or 2.
    const keys = [...slot0Keys, ...clientKeys(60).slice(30)];
    const socket = await connect(balancer.port);
    t.teardown(() => socket.destroy());
    socket.write(`GET /first HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${keys[keys.length - 1]}\r\n\r\n`);
    await readResponse(socket);
    let moved = 0;
    let mismatched = 0;
    for (const [i, key] of keys.entries()) {
      const wanted = await owner(balancer, key);
      socket.write(`GET /r${i} HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${key}\r\n\r\n`);
      const landed = slotOf.get(Number((await readResponse(socket)).fields.get('x-pid')));
      if (landed !== wanted) mismatched++;
      if (wanted !== preference(key, 3)[0]) moved++;
    }
    t.equal(mismatched, 0, `all ${keys.length} requests on the slot GET /owner named`);
    t.ok(moved >= slot0Keys.length, `the load bound moved ${moved} keys off their first choice (the case under test)`);
  });
}
