import t from 'tap';
import { isAlive, pollUntil, request, startBalancer } from '../helpers/balancer.js';
import { getWorkers } from '../helpers/admin.js';

t.test('SIGUSR2: a new master takes over the listening sockets; a request loop sees no failure across 3 upgrades', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2 } });
  let master = balancer.proc.pid as number;
  t.teardown(async () => {
    if (isAlive(master)) process.kill(master, 'SIGTERM');
    await pollUntil(() => (isAlive(master) ? undefined : true), 30_000).catch(() => process.kill(master, 'SIGKILL'));
  });
  const adminPort = balancer.adminPort as number;

  let stop = false;
  let served = 0;
  const failures: string[] = [];
  const workerPids = new Set<number>();
  /** Sequential requests, each on its own new connection, as load balancer health checks and short clients make them. */
  const loop = async (client: number): Promise<void> => {
    for (let i = 0; !stop && i < 1_000_000; i++) {
      try {
        const answer = await request(balancer.port, { headers: { 'x-forwarded-for': `198.51.100.${(client * 50 + (i % 50)) % 250}` } });
        if (answer.status !== 200) failures.push(`status ${answer.status}`);
        else {
          served++;
          workerPids.add((JSON.parse(answer.body.toString()) as { pid: number }).pid);
        }
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
  };
  const loops = [0, 1, 2, 3].map(loop);

  for (let run = 1; run <= 3; run++) {
    const before = served;
    await pollUntil(() => (served >= before + 50 ? true : undefined), 30_000);
    const oldWorkers = (await getWorkers(adminPort)).map((entry) => entry.pid);
    const previous = master;
    process.kill(previous, 'SIGUSR2');
    const ready = await pollUntil(() => balancer.logs.find((line) => line.pid === previous && line.msg === 'upgrade: the new master is ready; this one drains and exits'), 60_000);
    master = ready.successor as number;
    t.not(master, previous, `run ${run}: a new master (${master})`);
    await pollUntil(() => (isAlive(previous) ? undefined : true), 60_000);
    t.pass(`run ${run}: the old master ${previous} exited`);
    const newWorkers = (await getWorkers(adminPort)).map((entry) => entry.pid);
    t.equal(newWorkers.length, 2, `run ${run}: the admin port answers from the new master`);
    t.notOk(newWorkers.some((pid) => oldWorkers.includes(pid)), `run ${run}: with its own workers`);
    const after = served;
    await pollUntil(() => (served >= after + 50 ? true : undefined), 30_000);
    t.ok(newWorkers.some((pid) => workerPids.has(pid)), `run ${run}: the new workers serve`);
    t.same(failures, [], `run ${run}: no failed request (${served} served so far)`);
  }
  stop = true;
  await Promise.all(loops);
  t.same(failures, [], `no failed request in ${served}`);
});
