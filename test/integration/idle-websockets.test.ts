import t from 'tap';
import WebSocket from 'ws';
import { closeAll, echo, openWebSockets } from '../../bench/lib/websockets.js';
import { getWorkers } from '../helpers/admin.js';
import { DEMO_APP, pollUntil, processStats, request, startBalancer } from '../helpers/balancer.js';

t.setTimeout(300_000);

const IDLE = 10_000;
const WARM_CYCLES = 3;

/** Descriptors and RSS of a process once its descriptor count has held still for a second. */
async function settled(pid: number): Promise<{ fds: number; rssBytes: number }> {
  let last = processStats(pid);
  let stable = 0;
  await pollUntil(
    () => {
      const now = processStats(pid);
      stable = now.fds === last.fds ? stable + 1 : 0;
      last = now;
      return stable >= 10 ? true : undefined;
    },
    30_000,
    100,
  );
  return last;
}

t.test(`${IDLE} idle WebSockets: after the hand-offs the master holds nothing for them`, async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP } });
  t.teardown(() => balancer.stop());
  const masterPid = balancer.proc.pid as number;
  // The baseline is the master after three cycles of the same size, opened and closed: by then V8
  // has grown its heap to its working size (bench/README.md, "Idle WebSockets"), and what is
  // compared is what holding the sockets costs the master.
  for (let cycle = 0; cycle < WARM_CYCLES; cycle++) await closeAll(await openWebSockets(balancer.port, IDLE));
  const baseline = await settled(masterPid);
  const workerPids = (await getWorkers(balancer.adminPort as number)).map((worker) => worker.pid as number);
  const workersBefore = workerPids.map((pid) => processStats(pid).fds);

  const sockets = await openWebSockets(balancer.port, IDLE);
  t.teardown(() => closeAll(sockets));
  t.equal(sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length, IDLE, `${IDLE} WebSockets open`);

  const after = await settled(masterPid);
  t.ok(Math.abs(after.fds - baseline.fds) <= 10, `master descriptors ${baseline.fds} → ${after.fds} (within 10)`);
  t.ok(after.rssBytes <= baseline.rssBytes * 1.1, `master RSS ${(baseline.rssBytes / 2 ** 20).toFixed(1)} → ${(after.rssBytes / 2 ** 20).toFixed(1)} MiB (within 10 %)`);
  const workerFds = workerPids.reduce((sum, pid, i) => sum + processStats(pid).fds - (workersBefore[i] ?? 0), 0);
  t.ok(workerFds >= IDLE, `the workers hold them (${workerFds} more descriptors between them)`);
  for (let i = 0; i < IDLE; i += 1000) t.equal(await echo(sockets[i] as WebSocket, `ping ${i}`), `ping ${i}`, `socket ${i} still echoes`);
  t.equal((await request(balancer.port)).status, 200, 'a new request is served while they are open');
});
