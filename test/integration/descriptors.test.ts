import net from 'node:net';
import t from 'tap';
import { getMetricsText, getWorkers } from '../helpers/admin.js';
import { DEMO_APP, pollUntil, processStats, request, startBalancer } from '../helpers/balancer.js';
import { parseExposition, sumOf } from '../helpers/prometheus.js';

t.setTimeout(120_000);

const FLOOD = 1000;

/** Opens `count` connections at once that never send a byte; resolves when each connected or failed. */
async function flood(port: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect({ port, host: '127.0.0.1' });
          sockets.push(socket);
          socket.on('connect', () => resolve());
          socket.on('error', () => resolve());
          // Read, so that the master's close is seen.
          socket.on('data', () => {});
        }),
    ),
  );
  return sockets;
}

t.test('ulimit -n 256 and 1000 idle connections at once: the master stays up, keeps serving, and counts it', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP } }, [], {}, { openFiles: 256 });
  t.teardown(() => balancer.stop());
  const admin = balancer.adminPort as number;
  const masterPid = balancer.proc.pid as number;
  t.equal((await request(balancer.port)).status, 200, 'serves before');
  const before = (await getWorkers(admin)).map((worker) => worker.pid);
  const baseline = processStats(masterPid).fds;

  const sockets = await flood(balancer.port, FLOOD);
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  const during = await Promise.all(Array.from({ length: 20 }, () => request(balancer.port).then((answer) => answer.status)));
  t.same(during, Array(20).fill(200), 'twenty clients that send their request at once are served while the flood is open');
  const fds = processStats(masterPid).fds;
  t.ok(fds < 256, `the master holds ${fds} descriptors, under its limit of 256`);

  for (const socket of sockets) socket.destroy();
  t.equal((await request(balancer.port)).status, 200, 'the first request after the flood is served (no retry)');
  t.equal(balancer.proc.exitCode, null, 'the master is alive');
  t.same(
    (await getWorkers(admin)).map((worker) => worker.pid),
    before,
    'the same workers (no crash, no respawn)',
  );
  const metrics = parseExposition(await getMetricsText(admin));
  const refused = sumOf(metrics, 'sticky_refused_connections_total', { reason: 'ERR_EMFILE' });
  t.ok(refused >= FLOOD - 256, `ERR_EMFILE counted: ${refused} connections closed to stay within the limit`);
  t.equal(sumOf(metrics, 'sticky_worker_respawns_total'), 0, 'no respawn');
  const logged = await balancer.waitForLog((line) => line.msg === 'connection refused' && line.reason === 'ERR_EMFILE', 1000);
  t.equal(logged.client, '127.0.0.1', 'logged with the client');
  const refusalLines = balancer.logs.filter((line) => line.reason === 'ERR_EMFILE').length;
  t.ok(refusalLines < refused / 10, `logged at a bounded rate (${refusalLines} lines for ${refused} refusals)`);
  await pollUntil(() => (processStats(masterPid).fds <= baseline + 10 ? true : undefined), 10_000, 50);
  t.pass(`the master's descriptors are back to its baseline (${baseline}) after the flood`);
});
