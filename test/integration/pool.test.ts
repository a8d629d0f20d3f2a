import { join } from 'node:path';
import t from 'tap';
import { allReady, getMetricsText, getWorkers, putWorkers, type WorkerEntry } from '../helpers/admin.js';
import { DEMO_APP, ROOT, connect, demoGet, isAlive, pollUntil, readAll, request, startBalancer, type DemoAnswer } from '../helpers/balancer.js';
import { clientKeys, mapKeys, preference } from '../helpers/pool.js';
import { parseExposition, sumOf } from '../helpers/prometheus.js';

t.setTimeout(240_000);

t.test('scaling 2 → 3 → 2 (PUT /workers, then SIGTTIN/SIGTTOU) moves only the new slot’s keys, and back', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP } });
  t.teardown(() => balancer.stop());
  const admin = balancer.adminPort as number;
  const keys = clientKeys(300);
  const first = await mapKeys(balancer.port, keys);
  t.same(new Set([...first.values()].map((landing) => landing.worker)), new Set([0, 1]), 'two workers share the keys');

  const checkGrowth = async (how: string): Promise<Set<string>> => {
    const workers = await getWorkers(admin);
    t.ok(allReady(workers, 3), `${how}: three ready workers`);
    const newPid = workers[2]?.pid;
    const grown = await mapKeys(balancer.port, keys);
    const moved = keys.filter((key) => grown.get(key)?.pid !== first.get(key)?.pid);
    const share = moved.length / keys.length;
    t.ok(share >= 0.22 && share <= 0.45, `${how}: ${moved.length}/300 keys moved (${(share * 100).toFixed(1)}%)`);
    t.ok(
      moved.every((key) => grown.get(key)?.worker === 2 && grown.get(key)?.pid === newPid),
      `${how}: every moved key went to the new worker (slot 2)`,
    );
    t.ok(moved.every((key) => preference(key, 3)[0] === 2), `${how}: exactly the keys whose first choice is slot 2`);
    return new Set(moved);
  };
  const checkRestored = async (how: string, retiredPid: number): Promise<void> => {
    const back = await mapKeys(balancer.port, keys);
    const wrong = keys.filter((key) => back.get(key)?.pid !== first.get(key)?.pid || back.get(key)?.worker !== first.get(key)?.worker);
    t.same(wrong, [], `${how}: every key is back on its first worker`);
    // The removed worker drains and exits by itself.
    await pollUntil(() => (isAlive(retiredPid) ? undefined : true), 30_000);
    t.pass(`${how}: the removed worker (pid ${retiredPid}) exited`);
  };

  const put3 = await putWorkers(admin, 3);
  t.equal(put3.status, 200, 'PUT /workers answers when the new worker is ready');
  t.ok(allReady(put3.body as WorkerEntry[], 3), 'and answers the new list');
  const movedByPut = await checkGrowth('PUT 3');
  const slot2Pid = (put3.body as WorkerEntry[])[2]?.pid as number;
  const put2 = await putWorkers(admin, 2);
  t.equal(put2.status, 200);
  t.equal((put2.body as WorkerEntry[]).length, 2);
  await checkRestored('PUT 2', slot2Pid);

  balancer.proc.kill('SIGTTIN');
  await pollUntil(async () => (allReady(await getWorkers(admin), 3) ? true : undefined), 30_000, 50);
  const movedBySignal = await checkGrowth('SIGTTIN');
  t.same([...movedBySignal].sort(), [...movedByPut].sort(), 'the same keys move each time (slot ids, not pids, decide)');
  const signalPid = (await getWorkers(admin))[2]?.pid as number;
  balancer.proc.kill('SIGTTOU');
  await pollUntil(async () => ((await getWorkers(admin)).length === 2 ? true : undefined), 30_000, 50);
  await checkRestored('SIGTTOU', signalPid);
});

/** A request that failed, and whether it started after the kill. */
interface Failure {
  readonly key: string;
  readonly afterKill: boolean;
  readonly error: string;
}

t.test('kill -9 of a worker under a request loop: no new connection fails, keys fall back and come home', async (t) => {
  const balancer = await startBalancer({ workers: { count: 3, app: DEMO_APP } });
  t.teardown(() => balancer.stop());
  const admin = balancer.adminPort as number;
  const keys = clientKeys(60);
  const home = await mapKeys(balancer.port, keys);
  for (const key of keys) t.equal(home.get(key)?.worker, preference(key, 3)[0], `${key} is on its first choice`);
  const pidOf = new Map<number, number>([...home.values()].map((landing) => [landing.worker, landing.pid]));

  for (const victim of [1, 0]) {
    const before = await getWorkers(admin);
    const victimPid = before[victim]?.pid as number;
    const answers: Array<{ key: string; answer: DemoAnswer; afterKill: boolean }> = [];
    const failures: Failure[] = [];
    let killed = false;
    let respawned = false;
    let afterRespawn = 0;
    // Three client loops, each one fresh connection per request, cycling over
    // the keys; the first loop kills the victim right after one of its answers,
    // then sends the victim's keys at once — into the window where the worker
    // is dead and the master may not have seen it yet.
    const loop = async (lane: number): Promise<void> => {
      let i = lane * 7;
      while (afterRespawn < 90) {
        const key = keys[i++ % keys.length] as string;
        const afterKill = killed;
        try {
          const answer = await demoGet(balancer.port, { 'x-forwarded-for': key });
          answers.push({ key, answer, afterKill });
          if (respawned) afterRespawn++;
        } catch (error) {
          failures.push({ key, afterKill, error: (error as Error).message });
        }
        if (lane === 0 && !killed && i > 20) {
          process.kill(victimPid, 'SIGKILL');
          killed = true;
          // The victim's own keys first, while its slot is dying or empty.
          for (const victimKey of keys.filter((k) => home.get(k)?.worker === victim).slice(0, 5)) {
            try {
              answers.push({ key: victimKey, answer: await demoGet(balancer.port, { 'x-forwarded-for': victimKey }), afterKill: true });
            } catch (error) {
              failures.push({ key: victimKey, afterKill: true, error: (error as Error).message });
            }
          }
        }
      }
    };
    const watcher = async (): Promise<void> => {
      const workers = await pollUntil(
        async () => {
          const list = await getWorkers(admin);
          const slot = list[victim];
          return killed && slot?.state === 'ready' && slot.pid !== victimPid ? list : undefined;
        },
        60_000,
        50,
      );
      respawned = true;
      pidOf.set(victim, workers[victim]?.pid as number);
    };
    await Promise.all([loop(0), loop(1), loop(2), watcher()]);

    const newFailures = failures.filter((failure) => failure.afterKill);
    t.same(newFailures, [], `victim ${victim}: no request started after the kill failed`);
    // A request of another loop may have been inside the victim when it died
    // (that connection dies with it: TCP); at most one per other loop.
    t.ok(failures.length <= 2, `victim ${victim}: ${failures.length} in-flight request(s) lost with the worker (allowed ≤ 2)`);
    t.ok(isAlive(victimPid) === false, 'the victim is gone');
    t.not(pidOf.get(victim), victimPid, `slot ${victim} has a new worker`);

    let fallbacks = 0;
    for (const { key, answer } of answers) {
      const rank = preference(key, 3);
      if (rank[0] !== victim) {
        if (answer.worker !== rank[0] || answer.pid !== pidOf.get(rank[0] as number)) {
          t.fail(`key ${key} of slot ${rank[0]} moved to ${answer.worker} (pid ${answer.pid})`);
        }
        continue;
      }
      if (answer.worker === victim) continue;
      // Only to the key's next choice. (A request started just before the kill
      // may still be routed after the master saw the slot empty.)
      if (answer.worker !== rank[1]) t.fail(`key ${key} of slot ${victim} went to ${answer.worker} (next choice ${rank[1]})`);
      fallbacks++;
    }
    t.ok(fallbacks > 0, `victim ${victim}: ${fallbacks} requests of its keys went to their next choice while it was away`);

    const after = await mapKeys(balancer.port, keys);
    const displaced = keys.filter((key) => after.get(key)?.worker !== home.get(key)?.worker || after.get(key)?.pid !== pidOf.get(home.get(key)?.worker as number));
    t.same(displaced, [], `victim ${victim}: after the respawn every key is where it was (the victim's on its new pid)`);
  }

  const exposition = parseExposition(await getMetricsText(admin));
  t.equal(sumOf(exposition, 'sticky_worker_respawns_total', { worker: '1' }), 1, 'one respawn of slot 1 counted');
  t.equal(sumOf(exposition, 'sticky_worker_respawns_total', { worker: '0' }), 1, 'one respawn of slot 0 counted');
  t.ok(sumOf(exposition, 'sticky_fallbacks_total') > 0, 'fallbacks counted');
  const lines = balancer.logs.filter((line) => line.msg === 'worker exited; respawning');
  t.equal(lines.length, 2, 'each crash logged once');
});

t.test('workers.count "auto" starts one worker per CPU', async (t) => {
  const { availableParallelism } = await import('node:os');
  const balancer = await startBalancer({ workers: { count: 'auto', app: DEMO_APP } });
  t.teardown(() => balancer.stop());
  const workers = await getWorkers(balancer.adminPort as number);
  t.ok(allReady(workers, availableParallelism()), `${workers.length} workers for ${availableParallelism()} CPUs`);
});

t.test('balanceFactor: one hot key’s open connections spill to its next choice; without it they all stay', async (t) => {
  const hold = async (port: number, count: number): Promise<number[]> => {
    const sockets = [];
    const slots: number[] = [];
    for (let i = 0; i < count; i++) {
      // Keep-alive connections, all with the same key, each kept open.
      const socket = await connect(port);
      sockets.push(socket);
      const answer = readAll(socket, 1);
      socket.write('GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 198.51.100.77\r\n\r\n');
      let text = (await answer).toString();
      while (!text.includes('}')) text += (await readAll(socket, 1)).toString();
      slots.push((JSON.parse(text.slice(text.indexOf('{'))) as DemoAnswer).worker);
    }
    for (const socket of sockets) socket.destroy();
    return slots;
  };
  const first = preference('198.51.100.77', 2)[0] as number;
  const plain = await startBalancer({ workers: { count: 2, app: DEMO_APP } });
  t.teardown(() => plain.stop());
  t.same(await hold(plain.port, 6), [first, first, first, first, first, first], 'off by default: stickiness wins');
  const bounded = await startBalancer({ workers: { count: 2, app: DEMO_APP }, balanceFactor: 1 });
  t.teardown(() => bounded.stop());
  const slots = await hold(bounded.port, 6);
  t.equal(slots[0], first, 'the first connection goes to the first choice');
  t.equal(slots.filter((slot) => slot === first).length, 3, `factor 1: no worker holds more than the mean (${slots})`);
  const metrics = parseExposition(await getMetricsText(bounded.adminPort as number));
  t.equal(sumOf(metrics, 'sticky_fallbacks_total', { reason: 'over-load' }), 3, 'each spill counted as an over-load fallback');
});

t.test('a slot that crash-loops is respawned with a growing, logged backoff; the others keep serving', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: join(ROOT, 'test', 'fixtures', 'pool-crash-app.js') } });
  t.teardown(() => balancer.stop());
  const admin = balancer.adminPort as number;
  balancer.proc.kill('SIGTTIN');
  // Four crashes of slot 2: delays 0, 100, 200, 400 ms, each logged.
  await pollUntil(() => (balancer.logs.filter((line) => line.msg === 'worker exited; respawning').length >= 4 ? true : undefined), 60_000);
  const crashes = balancer.logs.filter((line) => line.msg === 'worker exited; respawning').slice(0, 4);
  t.same(
    crashes.map((line) => [line.worker, line.crashes, line.delayMs]),
    [
      [2, 1, 0],
      [2, 2, 100],
      [2, 3, 200],
      [2, 4, 400],
    ],
    'slot 2 backs off: 0, 100, 200, 400 ms',
  );
  const workers = await getWorkers(admin);
  t.same(workers.slice(0, 2).map((w) => w.state), ['ready', 'ready'], 'slots 0 and 1 stay ready');
  t.equal((await request(admin, { path: '/healthz' })).status, 200);
  // Every request is answered meanwhile (slot 2's keys by their next choice).
  for (const key of clientKeys(30)) {
    const answer = await request(balancer.port, { headers: { 'x-forwarded-for': key } });
    t.equal(answer.status, 200, `key ${key} answered`);
  }
  balancer.proc.kill('SIGTTOU');
  await pollUntil(async () => ((await getWorkers(admin)).length === 2 ? true : undefined), 30_000);
  const respawnsBefore = balancer.logs.filter((line) => line.msg === 'worker exited; respawning').length;
  const settled = balancer.logs.length;
  // Scaled back down: no more respawns of slot 2 (checked through a later round trip).
  await getWorkers(admin);
  t.equal(balancer.logs.slice(settled).filter((line) => line.msg === 'worker exited; respawning').length, 0);
  t.ok(respawnsBefore >= 4);
});
