import pino from 'pino';
import t from 'tap';
import { MasterMetrics } from '../../src/master/admin/metrics.js';
import type { ClientConn } from '../../src/master/client-conn.js';
import type { ClientLimits } from '../../src/master/client-limits.js';
import { Refuser } from '../../src/master/refuse.js';
import { Router, type Handoff } from '../../src/master/route.js';
import type { WorkerPool } from '../../src/master/supervisor/pool.js';
import type { WorkerProc } from '../../src/master/supervisor/worker-proc.js';
import type { ConnectionInfo } from '../../src/shared/connection-info.js';
import { placeKey } from '../../src/shared/placement.js';
import { rankSlots } from '../../src/shared/ring/rendezvous.js';

/** A connection stand-in: records whether the master closed its copy. */
function conn(): ClientConn & { closes: number } {
  return {
    peer: '127.0.0.1',
    closes: 0,
    get closed() {
      return this.closes > 0;
    },
    read() {},
    stopReading() {},
    close() {
      this.closes++;
    },
    sendable: {},
    fd: 99,
    toSocket() {
      throw new Error('not written to here');
    },
    endpoints: () => null,
  };
}

/** What accept or a received descriptor gives: a raw TCP handle (only what the router's connection reads of it). */
function fakeHandle(): object {
  return {
    fd: 98,
    close() {},
    getpeername(out: { address?: string }) {
      out.address = '127.0.0.1';
      return 0;
    },
  };
}

interface Sent {
  readonly proc: WorkerProc;
  readonly id: number;
  readonly info: ConnectionInfo;
  readonly bytes: Buffer;
  readonly done: (error: Error | null) => void;
}

/** A pool stand-in: `slots` workers, placement by the real function over its ready mask, sends recorded. */
function fakePool(slots: number) {
  const ready = new Uint8Array(slots).fill(1);
  const procs = Array.from({ length: slots }, (_, slot) => ({ slot, pid: 1000 + slot }) as unknown as WorkerProc);
  const sent: Sent[] = [];
  const chosen: Array<{ exclude: readonly number[]; pinned: number | undefined }> = [];
  const pool = {
    choose(keyHash: number, exclude: readonly number[] = [], pinned = -1) {
      chosen.push({ exclude: [...exclude], pinned });
      return placeKey(keyHash, { slotCount: slots, ready }, exclude, pinned);
    },
    worker: (slot: number) => procs[slot] ?? null,
    sendConnection(proc: WorkerProc, id: number, bytes: Buffer, info: ConnectionInfo, _handle: object, _fd: number, done: (error: Error | null) => void) {
      sent.push({ proc, id, info, bytes, done });
    },
  };
  return { pool: pool as unknown as WorkerPool, ready, procs, sent, chosen };
}

const INFO: ConnectionInfo = { key: '198.51.100.7', keySource: 'forwarded', worker: -1, proxy: null, peer: '127.0.0.1', peerTrusted: true };
const KEY_HASH = 0x12345678;
const RANKING = rankSlots(KEY_HASH, 3);

function handoff(overrides: Partial<Handoff> = {}): Handoff & { conn: ReturnType<typeof conn> } {
  return { conn: conn(), bytes: Buffer.from('GET / HTTP/1.1\r\n\r\n'), info: INFO, keyHash: KEY_HASH, acceptedAt: process.hrtime.bigint(), peer: '198.51.100.7', ...overrides } as Handoff & { conn: ReturnType<typeof conn> };
}

async function counter(metrics: MasterMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((family) => family.name === name);
  return (metric?.values ?? []).filter((value) => Object.entries(labels).every(([k, v]) => value.labels[k] === v)).reduce((sum, value) => sum + value.value, 0);
}

function router(pool: WorkerPool, options: { waitMs?: number; limits?: ClientLimits | null; before?: () => void } = {}) {
  const metrics = new MasterMetrics();
  const log = pino({ level: 'silent' });
  const route = new Router(pool, metrics, log, new Refuser(metrics, log), options.limits ?? null, () => options.waitMs ?? 1000, options.before ?? (() => {}));
  return { route, metrics };
}

t.test("a connection goes to its key's slot with the slot in its info; the ack releases it and closes the master's copy", async (t) => {
  const { pool, sent } = fakePool(3);
  let placements = 0;
  const { route, metrics } = router(pool, { before: () => placements++ });
  const h = handoff();
  route.take(h);
  t.equal(sent.length, 1);
  t.equal(sent[0]?.proc.slot, RANKING[0], "the key's first choice");
  t.equal(sent[0]?.info.worker, RANKING[0], 'the info names the slot');
  t.ok(sent[0]?.bytes.equals(h.bytes), 'the bytes as read');
  t.equal(placements, 1, 'the pool view was brought up to date before placing');
  t.equal(route.holding, 1);
  t.equal(route.unacknowledged, 1);
  t.equal(h.conn.closes, 0, 'kept until the worker acknowledges');
  route.onAck(sent[0]?.proc as WorkerProc, (sent[0]?.id as number) + 1);
  t.equal(route.holding, 1, 'an unknown id changes nothing');
  route.onAck(sent[0]?.proc as WorkerProc, sent[0]?.id as number);
  t.equal(route.holding, 0);
  t.equal(route.unacknowledged, 0);
  t.equal(h.conn.closes, 1);
  t.equal(await counter(metrics, 'sticky_handoffs_total', { worker: String(RANKING[0]), key_source: 'forwarded' }), 1);
});

t.test('a failed send re-routes to the next choice, never to a slot already tried; a late ack from the first worker is ignored', async (t) => {
  const { pool, sent, chosen } = fakePool(3);
  const { route, metrics } = router(pool);
  const h = handoff();
  route.take(h);
  sent[0]?.done(new Error('EPIPE'));
  t.equal(sent.length, 2);
  t.equal(sent[1]?.proc.slot, RANKING[1], 'the second choice');
  t.same(chosen[1]?.exclude, [RANKING[0]]);
  sent[1]?.done(new Error('EPIPE'));
  t.equal(sent[2]?.proc.slot, RANKING[2], 'then the third');
  route.onAck(sent[0]?.proc as WorkerProc, sent[0]?.id as number);
  t.equal(route.holding, 1, 'the first worker no longer has it');
  route.onAck(sent[2]?.proc as WorkerProc, sent[2]?.id as number);
  t.equal(route.holding, 0);
  t.equal(h.conn.closes, 1);
  t.equal(await counter(metrics, 'sticky_fallbacks_total', { reason: 'send-failed' }), 2);
});

t.test("a worker that exits: what it had not acknowledged goes to the key's next choice with the same bytes", async (t) => {
  const { pool, sent, ready } = fakePool(3);
  const { route } = router(pool);
  const handoffs = [handoff(), handoff(), handoff({ keyHash: 7 })];
  for (const h of handoffs) route.take(h);
  const first = sent[0]?.proc as WorkerProc;
  route.onAck(first, sent[0]?.id as number);
  ready[first.slot] = 0;
  route.onExit(first);
  const moved = sent.slice(3);
  t.equal(moved.length, sent.slice(0, 3).filter((s, i) => i > 0 && s.proc === first).length, 'only its unacknowledged ones');
  for (const again of moved) {
    t.not(again.proc, first);
    t.ok(again.bytes.equals(handoffs[1]?.bytes as Buffer));
  }
});

t.test('no ready worker: the connection waits, then is refused with ERR_NO_WORKER after the wait', async (t) => {
  const { pool, sent, ready } = fakePool(2);
  ready.fill(0);
  const { route, metrics } = router(pool, { waitMs: 60 });
  const h = handoff();
  route.take(h);
  t.equal(sent.length, 0);
  t.equal(route.holding, 1, 'held while it waits');
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.equal(route.holding, 0);
  t.equal(h.conn.closes, 1);
  t.equal(await counter(metrics, 'sticky_refused_connections_total', { reason: 'ERR_NO_WORKER' }), 1);

  const late = handoff();
  route.take(late);
  ready[1] = 1;
  while (sent.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal(sent[0]?.proc.slot, 1, 'a worker that becomes ready in time takes it');
  t.equal(await counter(metrics, 'sticky_fallbacks_total', { reason: 'no-ready-worker' }), 1);
});

t.test('a client gone before its turn is released without a send; its open count is given back', async (t) => {
  const { pool, sent } = fakePool(2);
  const released: string[] = [];
  const limits = { release: (client: string) => released.push(client), heldBy() {}, workerGone() {} } as unknown as ClientLimits;
  const { route } = router(pool, { limits });
  const h = handoff({ limitClient: '198.51.100.7' });
  h.conn.close();
  route.take(h);
  t.equal(sent.length, 0);
  t.equal(route.holding, 0);
  t.same(released, ['198.51.100.7']);
});

t.test('a pinned slot (sticky cookie) is asked for; a handed-back connection is routed by its next key, counted when it moves', async (t) => {
  const { pool, sent, chosen } = fakePool(3);
  const { route, metrics } = router(pool);
  route.take(handoff({ pinned: 2 }));
  t.equal(chosen[0]?.pinned, 2);
  t.equal(sent[0]?.proc.slot, 2);
  const from = sent[0]?.proc as WorkerProc;
  route.onHandbackHandle(from, { id: 0, bytes: Buffer.from('GET /next HTTP/1.1\r\n\r\n'), info: { ...INFO, worker: 2, firstClient: 'x' }, handback: { key: '203.0.113.5', keySource: 'forwarded' } }, fakeHandle());
  const back = sent[1] as Sent;
  t.equal(back.info.key, '203.0.113.5', 'the key the worker derived for the next request');
  t.equal(back.info.firstClient, undefined, "the first request's client does not travel on");
  t.equal(back.bytes.toString(), 'GET /next HTTP/1.1\r\n\r\n');
  route.onAck(back.proc, back.id);
  t.equal(await counter(metrics, 'sticky_handbacks_total'), 1);
  t.equal(await counter(metrics, 'sticky_rerouted_requests_total'), back.proc.slot === 2 ? 0 : 1);
});
