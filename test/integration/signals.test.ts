import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { getWorkers } from '../helpers/admin.js';
import { DEMO_APP, ROOT, connect, pollUntil, readAll, request, startBalancer } from '../helpers/balancer.js';

t.setTimeout(240_000);

/** True once a new TCP connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} while a 4 MiB POST is uploaded in pieces: the upload completes, then the master exits 0`, async (t) => {
    const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP, drainTimeoutMs: 60_000 } });
    t.teardown(() => balancer.stop());
    const body = randomBytes(4 << 20);
    const head = Buffer.from(
      `POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/octet-stream\r\ncontent-length: ${body.length}\r\n\r\n`,
    );
    const socket = await connect(balancer.port);
    const headEnd = Buffer.from('\r\n\r\n');
    let received = Buffer.alloc(0);
    const responseStarted = new Promise<void>((resolve) => {
      socket.on('data', function onData(chunk: Buffer) {
        received = Buffer.concat([received, chunk]);
        if (received.includes(headEnd)) {
          socket.removeListener('data', onData);
          resolve();
        }
      });
    });
    const piece = 64 << 10;
    const write = (data: Buffer): Promise<void> => new Promise((done, fail) => socket.write(data, (error) => (error ? fail(error) : done())));
    await write(Buffer.concat([head, body.subarray(0, piece)]));
    // The echo's head comes back once a worker has the connection and the app runs.
    await responseStarted;
    const rest = readAll(socket);

    balancer.proc.kill(signal);
    await balancer.waitForLog((line) => line.msg === 'stopping: no new connections, draining workers');
    await pollUntil(async () => ((await refused(balancer.port)) ? true : undefined), 20_000, 25);
    t.pass('new connections are refused once the master stops accepting');
    await balancer.waitForLog((line) => line.msg === 'worker draining');
    t.equal(balancer.proc.exitCode, null, 'the master waits for the upload');

    // The rest of the upload, slowly: one piece at a time after the previous one left.
    for (let offset = piece; offset < body.length; offset += piece) {
      await write(body.subarray(offset, offset + piece));
      await new Promise((done) => setTimeout(done, 2));
    }
    const response = Buffer.concat([received, await rest]);
    const split = response.indexOf(headEnd);
    const responseHead = response.subarray(0, split).toString();
    t.match(responseHead, /^HTTP\/1\.1 200 /, 'the upload was answered');
    // The head went out before the drain (keep-alive); the idle connection is closed after the response.
    t.ok(socket.destroyed || socket.readableEnded, 'the draining worker closed the connection after its response');
    t.ok(response.subarray(split + 4).equals(body), 'the full 4 MiB came back byte for byte');
    t.equal(await balancer.exited, 0, 'the master exited 0');
    t.ok(
      balancer.logs.some((line) => line.msg === 'stopped'),
      'and said so',
    );
  });
}

t.test('SIGTERM closes idle keep-alive connections and exits 0 without waiting for the drain timeout', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP, drainTimeoutMs: 120_000 } });
  const socket = await connect(balancer.port);
  const closed = readAll(socket);
  socket.write('GET / HTTP/1.1\r\nhost: localhost\r\n\r\n');
  await pollUntil(async () => ((await getWorkers(balancer.adminPort as number)).some((w) => w.connections > 0) ? true : undefined), 20_000);
  balancer.proc.kill('SIGTERM');
  const bytes = await closed;
  t.match(bytes.toString(), /^HTTP\/1\.1 200 /, 'the request on it was answered, then the idle connection closed');
  t.equal(await balancer.exited, 0);
});

/** Requests in a loop (fresh connection each) until `stop()`; counts every answer and failure. */
function requestLoop(port: number, lanes: number): { stop(): Promise<void>; ok: number; failed: string[]; pids: Set<number>; versions: Set<number> } {
  const state = { ok: 0, failed: [] as string[], pids: new Set<number>(), versions: new Set<number>(), running: true };
  const lane = async (): Promise<void> => {
    while (state.running) {
      try {
        const answer = await request(port, { headers: { 'x-forwarded-for': `192.0.2.${state.ok % 200}` } });
        if (answer.status !== 200) throw new Error(`status ${answer.status}`);
        const json = JSON.parse(answer.body.toString()) as { pid: number; version?: number };
        state.pids.add(json.pid);
        state.versions.add(json.version ?? 1);
        state.ok++;
      } catch (error) {
        state.failed.push((error as Error).message);
      }
    }
  };
  const all = Promise.all(Array.from({ length: lanes }, lane));
  return {
    get ok() {
      return state.ok;
    },
    failed: state.failed,
    pids: state.pids,
    versions: state.versions,
    stop: async () => {
      state.running = false;
      await all;
    },
  };
}

t.test('SIGHUP under a request loop: rolling restart, new config for the new workers, zero failed requests', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP } });
  t.teardown(() => balancer.stop());
  const admin = balancer.adminPort as number;
  const before = (await getWorkers(admin)).map((worker) => worker.pid);

  // The new config: another app, and a listen change that needs a master restart.
  const configPath = balancer.proc.spawnargs[balancer.proc.spawnargs.indexOf('--config') + 1] as string;
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as { listen: { port: number }; workers: { app: string } };
  config.workers.app = join(ROOT, 'test', 'fixtures', 'pool-v2-app.js');
  config.listen.port = 1;
  writeFileSync(configPath, JSON.stringify(config));

  const loop = requestLoop(balancer.port, 3);
  await pollUntil(() => (loop.ok >= 30 ? true : undefined), 30_000);
  const okBefore = loop.ok;
  balancer.proc.kill('SIGHUP');
  const done = await balancer.waitForLog((line) => line.msg === 'rolling restart done', 60_000);
  const okDuring = loop.ok - okBefore;
  await pollUntil(() => (loop.ok >= okBefore + okDuring + 30 ? true : undefined), 30_000);
  await loop.stop();

  t.same(loop.failed, [], `zero failed requests (${loop.ok} answered, ${okDuring} of them during the restart)`);
  t.ok(okDuring > 0, 'requests were answered while the workers were replaced');
  t.equal(done.replaced, 2, 'both workers replaced');
  const after = await getWorkers(admin);
  t.equal(after.length, 2);
  t.ok(after.every((worker) => worker.state === 'ready' && !before.includes(worker.pid)), `new pids ${after.map((w) => w.pid)} (were ${before})`);
  t.same([...loop.versions].sort(), [1, 2], 'old workers answered with the old app, new ones with the new app');
  const warning = balancer.logs.find((line) => line.msg === 'config changes that need a master restart; not applied');
  t.same(warning?.paths, ['listen'], 'the listen change is logged as needing a restart');
  const answer = await request(balancer.port);
  t.equal((JSON.parse(answer.body.toString()) as { version: number }).version, 2, 'the new app serves from now on');
  // Restarts are one slot at a time: the second new worker started only after the first was ready.
  const starts = balancer.logs.filter((line) => line.msg === 'worker starting' && line.replacing !== undefined);
  const readies = balancer.logs.filter((line) => line.msg === 'worker ready' && starts.some((s) => s.workerPid === line.workerPid));
  t.equal(starts.length, 2);
  t.ok((readies[0]?.time as number) <= (starts[1]?.time as number), 'slot 1 was replaced after slot 0’s new worker was ready');
});
