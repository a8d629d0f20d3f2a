import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { metricSum, pidsBySlot } from '../helpers/admin.js';
import { DEMO_APP, ROOT, connect, parseResponse, readResponse, request, startBalancer, type RawResponse, type RunningBalancer } from '../helpers/balancer.js';
import { clientKeys, keysBySlot } from '../helpers/pool.js';

/** Answers with x-pid / x-key headers and the request body, Content-Length framed; echoes after an Upgrade. */
const REUSE_APP = join(ROOT, 'test', 'fixtures', 'reuse-app.js');

t.setTimeout(180_000);

/**
 * A balancer with 2 workers, `key.reuse` and `app`, stopped when `t` ends; each
 * slot's pid, and `perSlot` keys per slot whose first choice is that slot.
 */
async function startReuse(t: { teardown(fn: () => unknown): void }, reuse: 'handback' | 'forward' | 'close' | 'off', app = REUSE_APP, perSlot = 1): Promise<{ balancer: RunningBalancer; pids: Map<number, number>; slot0: string[]; slot1: string[] }> {
  const balancer = await startBalancer({ key: { reuse }, workers: { count: 2, app } });
  t.teardown(() => balancer.stop());
  const pids = await pidsBySlot(balancer);
  const [slot0, slot1] = keysBySlot(2, perSlot) as [string[], string[]];
  return { balancer, pids, slot0, slot1 };
}

/** A client connection whose first request (`key`, a slot-0 key) was answered by worker 0. */
async function firstOnWorker0(t: { equal(found: unknown, wanted: unknown): unknown }, port: number, pids: Map<number, number>, key: string): Promise<net.Socket> {
  const socket = await connect(port);
  socket.write(`GET /first HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${key}\r\n\r\n`);
  t.equal(Number((await readResponse(socket)).fields.get('x-pid')), pids.get(0));
  return socket;
}

function chunkedBody(body: Buffer, pieces: number): Buffer {
  const parts: Buffer[] = [];
  const size = Math.ceil(body.length / pieces);
  for (let at = 0; at < body.length; at += size) {
    const piece = body.subarray(at, at + size);
    parts.push(Buffer.from(`${piece.length.toString(16)};ext=1\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\nx-trailer: yes\r\n\r\n'));
  return Buffer.concat(parts);
}

interface Planned {
  readonly bytes: Buffer;
  readonly key: string;
  readonly body: Buffer;
}

/** Request i of a mixed sequence: GET, POST with Content-Length, chunked POST, empty POST. */
function plan(i: number, key: string): Planned {
  const kind = i % 4;
  const body = kind === 0 || kind === 3 ? Buffer.alloc(0) : randomBytes(kind === 1 ? 1 + ((i * 7919) % 70_000) : 1 + ((i * 104_729) % 20_000));
  const head = `${kind === 0 ? 'GET' : 'POST'} /r${i} HTTP/1.1\r\nhost: app.example\r\nx-forwarded-for: 203.0.113.250, ${key}\r\n`;
  if (kind === 2) {
    return { key, body, bytes: Buffer.concat([Buffer.from(`${head}transfer-encoding: chunked\r\n\r\n`), chunkedBody(body, 3)]) };
  }
  return { key, body, bytes: Buffer.concat([Buffer.from(`${head}content-length: ${body.length}\r\n\r\n`), body]) };
}

/**
 * Reads successive responses off one connection, keeping what arrives beyond
 * each (pipelined responses share TCP segments).
 */
function responseReader(socket: net.Socket): () => Promise<RawResponse> {
  let buffered = Buffer.alloc(0);
  let waiter: (() => void) | null = null;
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    waiter?.();
  });
  socket.on('close', () => {
    closed = true;
    waiter?.();
  });
  return async () => {
    for (;;) {
      const response = parseResponse(buffered);
      if (response !== null) {
        buffered = buffered.subarray(response.consumed);
        return response;
      }
      if (closed) throw new Error(`connection closed before a complete response (${buffered.length} bytes)`);
      await new Promise<void>((resolve) => (waiter = resolve));
      waiter = null;
    }
  };
}

function closedWatch(socket: net.Socket): { closed: boolean } {
  const state = { closed: false };
  socket.once('close', () => (state.closed = true));
  return state;
}

for (const [reuse, handoff] of [
  ['handback', 'auto'],
  ['handback', 'ipc'],
  ['forward', 'auto'],
] as const) t.test(`${reuse} (workers.handoff "${handoff}"): 100 requests on one keep-alive connection, keys alternating between workers`, async (t) => {
  const balancer = await startBalancer({ key: { reuse }, workers: { count: 2, app: REUSE_APP, handoff } });
  t.teardown(() => balancer.stop());
  const pids = await pidsBySlot(balancer);
  const [slot0, slot1] = keysBySlot(2, 2) as [string[], string[]];
  const socket = await connect(balancer.port);
  const watch = closedWatch(socket);
  let wrong = 0;
  let corrupt = 0;
  for (let i = 0; i < 100; i++) {
    // Alternate the worker every request, and the key within a worker every other time.
    const slot = i % 2;
    const key = (slot === 0 ? slot0 : slot1)[(i >> 1) % 2] as string;
    const planned = plan(i, key);
    // Split writes: heads and bodies cross segment boundaries on their way to the master or the link.
    for (let at = 0; at < planned.bytes.length; at += 1000) socket.write(planned.bytes.subarray(at, at + 1000));
    const response = await readResponse(socket);
    if (response.status !== 200 || Number(response.fields.get('x-pid')) !== pids.get(slot)) wrong++;
    if (!response.body.equals(planned.body)) corrupt++;
    if (response.fields.get('x-key') !== key) t.fail(`request ${i}: the app saw key ${response.fields.get('x-key')}, expected ${key}`);
    if (response.fields.get('x-worker') !== String(slot)) t.fail(`request ${i}: the app saw worker ${response.fields.get('x-worker')}, expected ${slot}`);
  }
  t.equal(wrong, 0, "every response came from its key's worker");
  t.equal(corrupt, 0, 'every body came back byte for byte (GET, Content-Length, chunked, empty)');
  t.equal(watch.closed, false, 'the client connection was never closed');
  socket.destroy();
  if (reuse === 'handback') {
    t.ok((await metricSum(balancer, 'sticky_handbacks_total')) >= 99, 'a hand-back before every request after the first');
    t.ok((await metricSum(balancer, 'sticky_rerouted_requests_total')) >= 99, 'each went to the other worker');
  } else {
    t.equal(await metricSum(balancer, 'sticky_worker_forwarded_requests_total'), 50, "every request of the other worker's keys relayed (the connection stayed on the first)");
    t.equal(await metricSum(balancer, 'sticky_handbacks_total'), 0, 'nothing went back through the master');
  }
  t.equal(await metricSum(balancer, 'sticky_worker_requests_off_worker_total'), 0, 'no request served off its worker');
});

for (const reuse of ['handback', 'forward'] as const) t.test(`${reuse}: 20 connections at once, 40 requests each, keys at random: every answer from its key's worker, every body intact`, async (t) => {
  const balancer = await startBalancer({ key: { reuse }, workers: { count: 2, app: REUSE_APP } });
  t.teardown(() => balancer.stop());
  const pids = await pidsBySlot(balancer);
  const bySlot = keysBySlot(2, 10);
  const keys = (bySlot[0] as string[]).concat(bySlot[1] as string[]);
  const slotOf = new Map(keys.map((key) => [key, (bySlot[0] as string[]).includes(key) ? 0 : 1]));
  let seed = 0x2545f491;
  const next = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
  let wrong = 0;
  let corrupt = 0;
  let closed = 0;
  await Promise.all(
    Array.from({ length: 20 }, async (_, c) => {
      const socket = await connect(balancer.port);
      const watch = closedWatch(socket);
      for (let i = 0; i < 40; i++) {
        const key = keys[next() % keys.length] as string;
        const planned = plan(c * 40 + i, key);
        // Split writes, so that relays and hand-backs meet heads and bodies cut anywhere.
        for (let at = 0; at < planned.bytes.length; at += 4096) socket.write(planned.bytes.subarray(at, at + 4096));
        const response = await readResponse(socket);
        if (Number(response.fields.get('x-pid')) !== pids.get(slotOf.get(key) as number) || response.fields.get('x-key') !== key) wrong++;
        if (!response.body.equals(planned.body)) corrupt++;
      }
      if (watch.closed) closed++;
      socket.destroy();
    }),
  );
  t.equal(wrong, 0, "800 answers, each from its key's worker under its key");
  t.equal(corrupt, 0, 'every body intact');
  t.equal(closed, 0, 'no client connection closed');
  t.equal(await metricSum(balancer, 'sticky_worker_requests_off_worker_total'), 0);
  // About half of the requests after each connection's first belong to the other worker.
  const moved = await metricSum(balancer, reuse === 'forward' ? 'sticky_worker_forwarded_requests_total' : 'sticky_worker_handbacks_total');
  t.ok(moved > 200, `${moved} requests ${reuse === 'forward' ? 'relayed' : 'handed back'} (connections really switched workers, many at once)`);
});

for (const reuse of ['handback', 'forward'] as const) t.test(`${reuse}: two rolling restarts (SIGHUP) under keep-alive load with random keys: no misrouted request, no answer cut`, async (t) => {
  const balancer = await startBalancer({ key: { reuse }, workers: { count: 2, app: REUSE_APP } });
  t.teardown(() => balancer.stop());
  const bySlot = keysBySlot(2, 10);
  const keys = (bySlot[0] as string[]).concat(bySlot[1] as string[]);
  const slotOf = new Map(keys.map((key) => [key, (bySlot[0] as string[]).includes(key) ? 0 : 1]));
  let running = true;
  let ok = 0;
  let seed = 12345;
  let retried = 0;
  const failed: string[] = [];
  const lane = async (): Promise<void> => {
    let socket = await connect(balancer.port);
    let next = responseReader(socket);
    while (running) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const key = keys[seed % keys.length] as string;
      socket.write(`GET /r HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${key}\r\n\r\n`);
      try {
        const response = await next();
        if (response.status !== 200 || response.fields.get('x-key') !== key || response.fields.get('x-worker') !== String(slotOf.get(key))) failed.push(`wrong answer for ${key}`);
        else ok++;
      } catch (error) {
        // A draining worker closes its idle keep-alive connections, and a
        // request sent at that instant meets the close before any answer
        // (plain Node does the same; clients and balancers retry it, RFC 9112
        // 9.3.1). A close after part of an answer is a failure.
        const message = (error as Error).message;
        if (message.endsWith('(0 bytes)')) retried++;
        else failed.push(message);
        socket.destroy();
        socket = await connect(balancer.port);
        next = responseReader(socket);
      }
    }
    socket.destroy();
  };
  const lanes = Promise.all(Array.from({ length: 10 }, lane));
  for (let restart = 1; restart <= 2; restart++) {
    const okBefore = ok;
    balancer.proc.kill('SIGHUP');
    await balancer.waitForLog((line) => line.msg === 'rolling restart done' && balancer.logs.filter((l) => l.msg === 'rolling restart done').length === restart, 60_000);
    t.ok(ok > okBefore, `restart ${restart}: requests were answered while the workers were replaced`);
  }
  const okAfter = ok;
  for (let i = 0; i < 400 && ok < okAfter + 200; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  running = false;
  await lanes;
  t.same(failed, [], `no misrouted request, no cut answer (${ok} answered, ${retried} retried after an idle close)`);
  if (reuse === 'forward') t.ok((await metricSum(balancer, 'sticky_worker_forwarded_requests_total')) > 0, 'the new workers relay too');
});

t.test('forward: a draining front finishes the request it relays before it closes the connection; a draining back leaves an idle session\'s client connection open', async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, 'forward');

  // The front (worker 0) drains while a POST it relays to worker 1 waits for the rest of its body.
  const socket = await connect(balancer.port);
  const watch = closedWatch(socket);
  const next = responseReader(socket);
  socket.write(`GET /first HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot0[0]}\r\n\r\n`);
  t.equal(Number((await next()).fields.get('x-pid')), pids.get(0));
  socket.write(`POST /slow HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\ncontent-length: 10\r\n\r\nhello`);
  for (let i = 0; i < 200 && (await metricSum(balancer, 'sticky_worker_forwarded_requests_total')) < 1; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  process.kill(pids.get(0) as number, 'SIGTERM');
  // The draining worker closes its idle connections every 100 ms: give it several rounds (a
  // negative check: on a slow machine it passes without having been put to the test, never wrongly).
  await new Promise((resolve) => setTimeout(resolve, 600));
  t.equal(watch.closed, false, 'the connection is still open while its relayed request is unanswered');
  socket.write('world');
  const answer = await next();
  t.equal(Number(answer.fields.get('x-pid')), pids.get(1), "answered by the request's worker");
  t.equal(answer.body.toString(), 'helloworld', 'body intact');
  await new Promise<void>((resolve) => (watch.closed ? resolve() : socket.once('close', () => resolve())));
  t.pass('then the draining front closed it');

  // The back (worker 1) drains while a connection on worker 0's replacement has an idle session to it.
  await balancer.waitForLog((line) => line.msg === 'worker ready' && line.worker === 0 && line.workerPid !== pids.get(0));
  const front = await pidsBySlot(balancer);
  const second = await connect(balancer.port);
  const secondWatch = closedWatch(second);
  const nextSecond = responseReader(second);
  second.write(`GET /first HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot0[0]}\r\n\r\n`);
  t.equal(Number((await nextSecond()).fields.get('x-pid')), front.get(0));
  second.write(`GET /relayed HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\n\r\n`);
  t.equal(Number((await nextSecond()).fields.get('x-pid')), front.get(1), 'relayed to worker 1');
  process.kill(front.get(1) as number, 'SIGTERM');
  await balancer.waitForLog((line) => line.msg === 'worker ready' && line.worker === 1 && line.workerPid !== front.get(1));
  t.equal(secondWatch.closed, false, "worker 1 closed the idle session's link; the client connection stayed");
  second.write(`GET /after HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\n\r\n`);
  const after = await nextSecond();
  t.equal(after.status, 200, 'and its next request is answered');
  t.not(Number(after.fields.get('x-pid')), front.get(1), 'not by the worker that left');
  second.destroy();
});

t.test('forward: a long run of requests for another worker is relayed, every one, on the one client connection', async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, 'forward', REUSE_APP, 2);
  const socket = await firstOnWorker0(t, balancer.port, pids, slot0[0] as string);
  const watch = closedWatch(socket);
  // 40 requests of two clients of worker 1, bodies of every framing among them.
  let misserved = 0;
  for (let i = 0; i < 40; i++) {
    const planned = plan(i, slot1[i % 2] as string);
    for (let at = 0; at < planned.bytes.length; at += 1000) socket.write(planned.bytes.subarray(at, at + 1000));
    const response = await readResponse(socket);
    if (Number(response.fields.get('x-pid')) !== pids.get(1) || response.fields.get('x-key') !== slot1[i % 2] || !response.body.equals(planned.body)) misserved++;
  }
  t.equal(misserved, 0, "all 40 answered by worker 1 under their own keys, bodies intact");
  t.equal(watch.closed, false, 'one client connection throughout');
  socket.destroy();
  t.equal(await metricSum(balancer, 'sticky_worker_forwarded_requests_total'), 40, 'every one relayed');
  t.equal(await metricSum(balancer, 'sticky_worker_handbacks_total'), 0, 'none handed back');
  t.equal(await metricSum(balancer, 'sticky_worker_requests_off_worker_total'), 0);
});

t.test('forward: an Upgrade for the worker a link already serves moves the connection there (no tunnel through two processes)', async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, 'forward');
  const socket = await firstOnWorker0(t, balancer.port, pids, slot0[0] as string);
  socket.write(`GET /relayed HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\n\r\n`);
  t.equal(Number((await readResponse(socket)).fields.get('x-pid')), pids.get(1), 'relayed');
  const after = randomBytes(2000);
  socket.write(Buffer.concat([Buffer.from(`GET /up HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n`), after]));
  const upgraded = await new Promise<Buffer>((resolve) => {
    let got = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf('\r\n\r\n');
      if (end >= 0 && got.length - end - 4 >= after.length) resolve(got);
    });
  });
  const headEnd = upgraded.indexOf('\r\n\r\n');
  t.match(upgraded.subarray(0, headEnd).toString(), new RegExp(`^HTTP/1\\.1 101 [\\s\\S]*x-pid: ${pids.get(1)}`), "switched by its key's worker");
  t.ok(upgraded.subarray(headEnd + 4).equals(after), 'the bytes after the head echoed unchanged');
  socket.destroy();
  t.equal(await metricSum(balancer, 'sticky_worker_forwarded_requests_total'), 1, 'only the plain request was relayed');
  t.equal(await metricSum(balancer, 'sticky_worker_handbacks_total'), 1, 'the upgrade moved the connection');
});

t.test('forward: the app behind a link sees the client address; Connection: close on a relayed request closes the client connection after its response', async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, 'forward', DEMO_APP);
  const socket = await connect(balancer.port);
  socket.write(`GET /who HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot0[0]}\r\n\r\n`);
  const here = JSON.parse((await readResponse(socket)).body.toString()) as Record<string, unknown>;
  socket.write(`GET /who HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\nconnection: close\r\n\r\n`);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const relayed = await readResponse(socket);
  const there = JSON.parse(relayed.body.toString()) as Record<string, unknown>;
  t.equal(there.pid, pids.get(1), "served by its key's worker");
  t.equal(there.key, slot1[0]);
  t.equal(there.worker, 1);
  t.equal(there.clientIp, here.clientIp, "the relayed request's socket shows the same client address as the first");
  t.equal(there.clientPort, here.clientPort, "and port");
  t.equal(relayed.fields.get('connection'), 'close');
  await closed;
  t.pass('the client connection closed after the response');
});

t.test('forward: a request whose link will not connect is served where it is and closes its connection; the next connection goes to its worker', async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, 'forward');
  // Worker 1's link socket disappears (as if it were going): connects to it fail.
  const dirs = readdirSync(tmpdir()).filter((name) => name.startsWith('sticky-links-'));
  const path = dirs.map((dir) => join(tmpdir(), dir, `${pids.get(1)}.sock`)).find((candidate) => existsSync(candidate));
  t.ok(path, "worker 1's link socket exists");
  unlinkSync(path as string);
  const socket = await firstOnWorker0(t, balancer.port, pids, slot0[0] as string);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`GET /unreachable HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\n\r\n`);
  const response = await readResponse(socket);
  t.equal(Number(response.fields.get('x-pid')), pids.get(0), 'answered by the worker holding the connection');
  t.equal(response.fields.get('connection'), 'close', 'with Connection: close');
  await closed;
  t.pass('and the connection closed after it');
  t.equal(await metricSum(balancer, 'sticky_worker_requests_off_worker_total'), 1, 'counted as served off its worker');
  const fresh = await connect(balancer.port);
  fresh.write(`GET /again HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\n\r\n`);
  t.equal(Number((await readResponse(fresh)).fields.get('x-pid')), pids.get(1), "the client's next connection is decided by the master: its own worker");
  fresh.destroy();
});

t.test('forward: without a usable temporary directory the master warns and the workers hand back instead', async (t) => {
  const balancer = await startBalancer({ key: { reuse: 'forward' }, workers: { count: 2, app: REUSE_APP } }, [], { TMPDIR: join(tmpdir(), `missing-${process.pid}`, 'deeper') });
  t.teardown(() => balancer.stop());
  t.ok(balancer.logs.some((line) => line.msg === 'cannot make the directory for worker-to-worker links; key.reuse "forward" hands back instead'), 'warned');
  const pids = await pidsBySlot(balancer);
  const [slot0, slot1] = keysBySlot(2, 1) as [string[], string[]];
  const socket = await connect(balancer.port);
  for (let i = 0; i < 6; i++) {
    const slot = i % 2;
    socket.write(`GET /r${i} HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${(slot === 0 ? slot0 : slot1)[0]}\r\n\r\n`);
    t.equal(Number((await readResponse(socket)).fields.get('x-pid')), pids.get(slot), `request ${i} served by slot ${slot}`);
  }
  socket.destroy();
  t.ok((await metricSum(balancer, 'sticky_handbacks_total')) >= 5, 'handed back');
  t.equal(await metricSum(balancer, 'sticky_worker_forwarded_requests_total'), 0, 'nothing relayed');
});

t.test('forward: the worker behind a link dies mid-request: the client connection closes, and the next one is served', async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, 'forward');
  const socket = await firstOnWorker0(t, balancer.port, pids, slot0[0] as string);
  // A POST whose body never completes: the request sits at worker 1, relayed.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`POST /stuck HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\ncontent-length: 100\r\n\r\nabc`);
  for (let i = 0; i < 200 && (await metricSum(balancer, 'sticky_worker_forwarded_requests_total')) < 1; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  process.kill(pids.get(1) as number, 'SIGKILL');
  await closed;
  t.pass('the client connection closed (not left hanging)');
  await balancer.waitForLog((line) => line.msg === 'worker ready' && line.worker === 1 && line.workerPid !== pids.get(1));
  const fresh = await connect(balancer.port);
  fresh.write(`GET /after HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot0[0]}\r\n\r\n`);
  t.equal((await readResponse(fresh)).status, 200, 'a new connection is served');
  fresh.write(`GET /after HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${slot1[0]}\r\n\r\n`);
  const replaced = await readResponse(fresh);
  t.equal(replaced.status, 200, "and relayed to worker 1's replacement");
  t.not(Number(replaced.fields.get('x-pid')), pids.get(1));
  fresh.destroy();
});

for (const reuse of ['handback', 'forward'] as const) t.test(`${reuse} with the demo app: GET pids and POST /echo bodies`, async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, reuse, DEMO_APP);
  const socket = await connect(balancer.port);
  const watch = closedWatch(socket);
  for (let i = 0; i < 40; i++) {
    const slot = i % 2;
    const key = (slot === 0 ? slot0 : slot1)[0] as string;
    if (i % 4 < 2) {
      socket.write(`GET /who HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${key}\r\n\r\n`);
      const answer = JSON.parse((await readResponse(socket)).body.toString()) as { pid: number; key: string; worker: number };
      t.equal(answer.pid, pids.get(slot), `GET ${i}: served by slot ${slot}`);
      t.equal(answer.key, key, `GET ${i}: the app sees this request's key`);
    } else {
      const body = randomBytes(10_000 + i);
      socket.write(Buffer.concat([Buffer.from(`POST /echo HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${key}\r\ncontent-length: ${body.length}\r\n\r\n`), body]));
      t.ok((await readResponse(socket)).body.equals(body), `POST ${i}: echoed byte for byte`);
    }
  }
  t.equal(watch.closed, false, 'one connection throughout');
  socket.destroy();
});

for (const reuse of ['handback', 'forward'] as const) t.test(`${reuse}: pipelined requests (all written at once) are answered in order by their workers`, async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, reuse);
  const planned: Array<Planned & { slot: number }> = [];
  for (let i = 0; i < 30; i++) {
    // Runs of the same worker, then a switch: both "serve here" and "hand back" at boundaries.
    const slot = Math.floor(i / 3) % 2;
    planned.push({ ...plan(i, ((slot === 0 ? slot0 : slot1) as string[])[0] as string), slot });
  }
  const socket = await connect(balancer.port);
  const watch = closedWatch(socket);
  const next = responseReader(socket);
  // Cut into odd pieces so that boundaries fall inside TCP segments and heads are split.
  const all = Buffer.concat(planned.map((p) => p.bytes));
  for (let at = 0; at < all.length; at += 7777) socket.write(all.subarray(at, at + 7777));
  const responses: RawResponse[] = [];
  for (let i = 0; i < planned.length; i++) responses.push(await next());
  for (const [i, response] of responses.entries()) {
    const p = planned[i] as Planned & { slot: number };
    t.equal(response.fields.get('x-url'), `/r${i}`, `response ${i} answers request ${i}`);
    t.equal(Number(response.fields.get('x-pid')), pids.get(p.slot), `request ${i} served by slot ${p.slot}`);
    t.ok(response.body.equals(p.body), `request ${i} body intact`);
  }
  t.equal(watch.closed, false, 'connection kept');
  socket.destroy();
});

for (const reuse of ['handback', 'forward'] as const) t.test(`${reuse}: Expect: 100-continue and an Upgrade go to their own key’s worker`, async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, reuse);
  const a = slot0[0] as string;
  const b = slot1[0] as string;
  const socket = await connect(balancer.port);
  socket.write(`GET /first HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${a}\r\n\r\n`);
  t.equal(Number((await readResponse(socket)).fields.get('x-pid')), pids.get(0));

  // Expect: 100-continue for the other worker: the interim answer must come from it, then the body.
  const body = randomBytes(50_000);
  socket.write(`POST /continue HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${b}\r\nexpect: 100-continue\r\ncontent-length: ${body.length}\r\n\r\n`);
  const interim = await new Promise<Buffer>((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.removeListener('data', onData);
      if (end + 4 < got.length) socket.unshift(got.subarray(end + 4));
      resolve(got.subarray(0, end + 4));
    };
    socket.on('data', onData);
  });
  t.match(interim.toString(), /^HTTP\/1\.1 100 Continue\r\n/, '100 Continue before the body');
  socket.write(body);
  const continued = await readResponse(socket);
  t.equal(Number(continued.fields.get('x-pid')), pids.get(1), "served by its key's worker");
  t.ok(continued.body.equals(body), 'body intact');

  // Back to worker 0, then an Upgrade for worker 1 with bytes after its head in the same packet.
  socket.write(`GET /again HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${a}\r\n\r\n`);
  t.equal(Number((await readResponse(socket)).fields.get('x-pid')), pids.get(0));
  const after = randomBytes(3000);
  socket.write(Buffer.concat([Buffer.from(`GET /up HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${b}\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n`), after]));
  const expected = after.length;
  const upgraded = await new Promise<Buffer>((resolve) => {
    let got = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf('\r\n\r\n');
      if (end >= 0 && got.length - end - 4 >= expected) resolve(got);
    });
  });
  const headEnd = upgraded.indexOf('\r\n\r\n');
  const head = upgraded.subarray(0, headEnd).toString();
  t.match(head, /^HTTP\/1\.1 101 /, 'switched protocols');
  t.match(head, new RegExp(`x-pid: ${pids.get(1)}`), "by the upgrading request's worker");
  t.ok(upgraded.subarray(headEnd + 4).equals(after), 'bytes after the upgrade head reach that worker unchanged');
  socket.destroy();
});

t.test('close: every response on a trusted, forwarded-keyed connection says Connection: close', async (t) => {
  const { balancer, pids, slot0, slot1 } = await startReuse(t, 'close');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  for (let i = 0; i < 100; i++) {
    const slot = i % 2;
    const key = ((slot === 0 ? slot0 : slot1) as string[])[0] as string;
    const body = i % 3 === 0 ? randomBytes(5000 + i) : Buffer.alloc(0);
    const answer = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: balancer.port, method: body.length > 0 ? 'POST' : 'GET', path: `/c${i}`, agent, headers: { 'x-forwarded-for': key, 'content-length': body.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    t.equal(answer.headers.connection, 'close', `response ${i} carries Connection: close`);
    t.equal(Number(answer.headers['x-pid']), pids.get(slot), `response ${i} from its key's worker`);
    t.ok(answer.body.equals(body), `response ${i} body intact`);
  }
  // An untrusted-looking connection is not affected: keyed by the PROXY header.
  const proxied = await request(balancer.port, { headers: {} });
  t.equal(proxied.headers.connection, 'close', 'remote-keyed connections from a trusted peer close too (another client may come next)');
});

t.test('stickyCookie: set on the first response, then pins fresh connections; a forged one is ignored', async (t) => {
  const secret = randomBytes(24).toString('hex');
  const balancer = await startBalancer({
    key: { reuse: 'handback' },
    workers: { count: 2, app: REUSE_APP },
    stickyCookie: { name: 'srv', secret, maxAgeS: 3600 },
  });
  t.teardown(() => balancer.stop());
  const pids = await pidsBySlot(balancer);
  const keys = clientKeys(40);
  for (const [index, firstKey] of keys.slice(0, 4).entries()) {
    const first = await request(balancer.port, { headers: { 'x-forwarded-for': firstKey } });
    const setCookie = first.headers['set-cookie'] ?? [];
    t.equal(setCookie.length, 1, 'the first response sets one cookie');
    const cookie = (setCookie[0] as string).split(';')[0] as string;
    t.match(cookie, /^srv=\d+\.\d+\.[A-Za-z0-9_-]{22}$/);
    const pid = Number(first.headers['x-pid']);
    for (let i = 0; i < 20; i++) {
      // Another address every time: without the cookie these would spread over both workers.
      const answer = await request(balancer.port, { headers: { 'x-forwarded-for': keys[(index * 20 + i) % keys.length] as string, cookie: `theme=x; ${cookie}` } });
      t.equal(Number(answer.headers['x-pid']), pid, `client ${index} request ${i}: the same worker`);
      t.equal(answer.headers['x-key-source'], 'sticky');
      t.equal(answer.headers['set-cookie'], undefined, 'a valid cookie is not set again');
    }
  }
  // A wrong signature: routed by the key as if there were no cookie, counted, and replaced.
  const [slot0, slot1] = keysBySlot(2, 1) as [string[], string[]];
  const genuine = (await request(balancer.port, { headers: { 'x-forwarded-for': slot0[0] as string } })).headers['set-cookie']?.[0]?.split(';')[0] as string;
  t.match(genuine, /^srv=0\./, 'slot 0 cookie');
  const [, expiry, mac] = genuine.slice('srv='.length).split('.') as [string, string, string];
  const forged = `srv=0.${expiry}.${(mac[0] === 'A' ? 'B' : 'A') + mac.slice(1)}`;
  const before = await metricSum(balancer, 'sticky_cookie_rejected_total', { reason: 'forged' });
  const answer = await request(balancer.port, { headers: { 'x-forwarded-for': slot1[0] as string, cookie: forged } });
  t.equal(Number(answer.headers['x-pid']), pids.get(1), 'routed by its key, not by the forged slot');
  t.equal(answer.headers['x-key-source'], 'forwarded');
  t.match(answer.headers['set-cookie']?.[0] ?? '', /^srv=1\./, 'and given a genuine cookie for the worker that served it');
  t.equal((await metricSum(balancer, 'sticky_cookie_rejected_total', { reason: 'forged' })) - before, 1, 'counted as forged');
  const stale = `srv=${genuine.slice('srv='.length).split('.')[0]}.1.${mac}`;
  const staleAnswer = await request(balancer.port, { headers: { 'x-forwarded-for': slot1[0] as string, cookie: stale } });
  t.equal(Number(staleAnswer.headers['x-pid']), pids.get(1), 'a tampered expiry is ignored too');
});

t.test('stickyCookie on a reused connection: each request goes to its cookie’s worker', async (t) => {
  const balancer = await startBalancer({
    key: { reuse: 'handback', order: ['cookie', 'remote'] },
    workers: { count: 2, app: REUSE_APP },
    stickyCookie: { name: 'srv', secret: randomBytes(24).toString('hex') },
  });
  t.teardown(() => balancer.stop());
  const pids = await pidsBySlot(balancer);
  // Find one genuine cookie per worker (session ids spread the first requests).
  const cookies = new Map<number, string>();
  for (let i = 0; cookies.size < 2 && i < 200; i++) {
    const answer = await request(balancer.port, { headers: { cookie: `sid=session-${i}` } });
    const slot = [...pids].find(([, pid]) => pid === Number(answer.headers['x-pid']))?.[0] as number;
    if (!cookies.has(slot)) cookies.set(slot, (answer.headers['set-cookie']?.[0] ?? '').split(';')[0] as string);
  }
  t.equal(cookies.size, 2, 'a cookie for each worker');
  const socket = await connect(balancer.port);
  const watch = closedWatch(socket);
  for (let i = 0; i < 20; i++) {
    const slot = i % 2;
    // The session id says nothing: only the sticky cookie decides.
    socket.write(`GET /s${i} HTTP/1.1\r\nhost: x\r\ncookie: sid=same; ${cookies.get(slot)}\r\n\r\n`);
    const response = await readResponse(socket);
    t.equal(Number(response.fields.get('x-pid')), pids.get(slot), `request ${i}: its cookie's worker`);
  }
  t.equal(watch.closed, false, 'one connection');
  socket.destroy();
});
