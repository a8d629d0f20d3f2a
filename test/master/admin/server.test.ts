import type { AddressInfo } from 'node:net';
import pino from 'pino';
import t from 'tap';
import { MasterMetrics } from '../../../src/master/admin/metrics.js';
import { createAdminServer, listenAdmin, type AdminPool } from '../../../src/master/admin/server.js';
import type { SlotView } from '../../../src/master/supervisor/pool.js';
import { placeKey } from '../../../src/shared/placement.js';
import { hashKey } from '../../../src/shared/ring/farmhash.js';
import { pickSlot } from '../../../src/shared/ring/rendezvous.js';
import { request } from '../../helpers/balancer.js';
import { parseExposition } from '../../helpers/prometheus.js';

/** A pool stand-in: slots as given, scaling recorded. */
function fakePool(slots: SlotView[]): AdminPool & { slots: SlotView[] } {
  return {
    slots,
    readyCount() {
      return this.slots.filter((slot) => slot.state === 'ready').length;
    },
    view() {
      return this.slots;
    },
    choose(keyHash) {
      return placeKey(keyHash, { slotCount: this.slots.length, ready: Uint8Array.from(this.slots, (slot) => (slot.state === 'ready' ? 1 : 0)) });
    },
  };
}

async function start(pool: AdminPool, scale: (count: number) => Promise<boolean>, workerMetrics = async () => ''): Promise<number> {
  const server = createAdminServer(pool, new MasterMetrics(), { scale, workerMetrics }, pino({ level: 'silent' }));
  const address: AddressInfo = await listenAdmin(server, '127.0.0.1', 0);
  t.teardown(() => new Promise<void>((done) => server.close(() => done())));
  return address.port;
}

const READY = (slot: number): SlotView => ({ slot, pid: 1000 + slot, state: 'ready', connections: slot });

t.test('GET /healthz: ok with the ready count, 503 with none', async (t) => {
  const pool = fakePool([READY(0), READY(1), { slot: 2, pid: null, state: 'empty', connections: 0 }]);
  const port = await start(pool, async () => true);
  const ok = await request(port, { path: '/healthz' });
  t.equal(ok.status, 200);
  t.same(JSON.parse(ok.body.toString()), { status: 'ok', workers: 2 });
  pool.slots = [{ slot: 0, pid: null, state: 'empty', connections: 0 }];
  const down = await request(port, { path: '/healthz' });
  t.equal(down.status, 503);
  t.same(JSON.parse(down.body.toString()), { status: 'unavailable', workers: 0 });
});

t.test('GET /workers answers the slot list', async (t) => {
  const pool = fakePool([READY(0), READY(1)]);
  const port = await start(pool, async () => true);
  const answer = await request(port, { path: '/workers' });
  t.equal(answer.status, 200);
  t.equal(answer.headers['content-type'], 'application/json');
  t.same(JSON.parse(answer.body.toString()), pool.slots);
});

t.test("GET /owner?key= answers the key's slot as placement decides it; 400 without a key, 503 with no ready slot", async (t) => {
  const pool = fakePool([READY(0), READY(1), READY(2)]);
  const port = await start(pool, async () => true);
  for (const key of ['198.51.100.7', '2001:db8::1', 'session=abc&x=1']) {
    const answer = await request(port, { path: `/owner?key=${encodeURIComponent(key)}` });
    t.equal(answer.status, 200);
    t.same(JSON.parse(answer.body.toString()), { slot: pickSlot(hashKey(key), 3) }, key);
  }
  pool.slots = [READY(0), { slot: 1, pid: null, state: 'empty', connections: 0 }];
  t.same(JSON.parse((await request(port, { path: '/owner?key=k' })).body.toString()), { slot: 0 }, 'only ready slots');
  t.equal((await request(port, { path: '/owner' })).status, 400);
  t.equal((await request(port, { path: '/owner?key=k', method: 'POST' })).status, 405);
  pool.slots = [{ slot: 0, pid: null, state: 'empty', connections: 0 }];
  const none = await request(port, { path: '/owner?key=k' });
  t.equal(none.status, 503);
  t.same(JSON.parse(none.body.toString()), { slot: null });
});

t.test('PUT /workers scales and answers the new list; bad bodies are 400/413', async (t) => {
  const pool = fakePool([READY(0)]);
  const asked: number[] = [];
  const port = await start(pool, async (count) => {
    asked.push(count);
    pool.slots = Array.from({ length: count }, (_, slot) => READY(slot));
    return true;
  });
  const ok = await request(port, { method: 'PUT', path: '/workers', body: '{"count":3}' });
  t.equal(ok.status, 200);
  t.same(JSON.parse(ok.body.toString()), [READY(0), READY(1), READY(2)]);
  t.same(asked, [3]);

  const invalid = [
    { name: 'not JSON', body: 'three', status: 400 },
    { name: 'no count', body: '{}', status: 400 },
    { name: 'string count', body: '{"count":"3"}', status: 400 },
    { name: 'zero', body: '{"count":0}', status: 400 },
    { name: 'fraction', body: '{"count":1.5}', status: 400 },
    { name: 'over the slot limit', body: '{"count":1025}', status: 400 },
    { name: 'body too large', body: `{"count":2,"pad":"${'x'.repeat(5000)}"}`, status: 413 },
  ];
  for (const row of invalid) {
    const answer = await request(port, { method: 'PUT', path: '/workers', body: row.body });
    t.equal(answer.status, row.status, row.name);
  }
  t.same(asked, [3], 'no invalid request reached the pool');
});

t.test('PUT /workers while stopping answers 503', async (t) => {
  const port = await start(fakePool([READY(0)]), async () => false);
  const answer = await request(port, { method: 'PUT', path: '/workers', body: '{"count":2}' });
  t.equal(answer.status, 503);
});

t.test('GET /metrics: master and worker expositions in one valid body', async (t) => {
  const workerText = '# HELP sticky_worker_requests_total x\n# TYPE sticky_worker_requests_total counter\nsticky_worker_requests_total 7\n';
  const port = await start(fakePool([READY(0)]), async () => true, async () => workerText);
  const answer = await request(port, { path: '/metrics' });
  t.equal(answer.status, 200);
  t.match(answer.headers['content-type'], /^text\/plain/);
  const exposition = parseExposition(answer.body.toString());
  t.equal(exposition.types.get('sticky_handoffs_total'), 'counter');
  t.equal(exposition.types.get('sticky_worker_requests_total'), 'counter');
  t.same(exposition.samples.find((s) => s.name === 'sticky_worker_requests_total')?.value, 7);
});

t.test('unknown paths are 404, wrong methods 405', async (t) => {
  const port = await start(fakePool([READY(0)]), async () => true);
  t.equal((await request(port, { path: '/nope' })).status, 404);
  t.equal((await request(port, { method: 'POST', path: '/healthz' })).status, 405);
  t.equal((await request(port, { method: 'DELETE', path: '/workers' })).status, 405);
});
