import http from 'node:http';
import t from 'tap';
import { getMetricsText, getWorkers, type WorkerEntry } from '../helpers/admin.js';
import { DEMO_APP, isAlive, pollUntil, startBalancer, type DemoAnswer, type RunningBalancer } from '../helpers/balancer.js';
import { keysBySlot, mapKeys, preference } from '../helpers/pool.js';
import { parseExposition, sumOf } from '../helpers/prometheus.js';

t.setTimeout(180_000);

const SLOTS = 3;
const VICTIM = 1;

/** A GET for `key` on a fresh connection, given up after `ms` (a stopped worker never answers). */
function demoGetWithin(port: number, key: string, ms: number): Promise<DemoAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { 'x-forwarded-for': key }, agent: false, signal: AbortSignal.timeout(ms) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(Buffer.concat(chunks).toString()) as DemoAnswer) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function slotState(balancer: RunningBalancer, slot: number): Promise<WorkerEntry | undefined> {
  return (await getWorkers(balancer.adminPort as number))[slot];
}

/** Polls GET /workers until `slot` is in `state` (and, with `pid`, has it). */
function waitForState(balancer: RunningBalancer, slot: number, state: string, timeoutMs: number, pid?: number): Promise<WorkerEntry> {
  return pollUntil(
    async () => {
      const entry = await slotState(balancer, slot);
      return entry?.state === state && (pid === undefined || entry.pid === pid) ? entry : undefined;
    },
    timeoutMs,
    50,
  );
}

/** 40 keys, 14 or 13 whose first choice is each slot. */
function fortyKeys(): string[] {
  return keysBySlot(SLOTS, 14).flat().slice(0, 40);
}

t.test('SIGSTOP of a worker: its keys go to their next slot, the others stay put, and all come home after SIGCONT', async (t) => {
  const balancer = await startBalancer({ workers: { count: SLOTS, app: DEMO_APP, heartbeatMs: 100, unresponsiveMs: 600, ackTimeoutMs: 400, killUnresponsiveMs: 0 } });
  t.teardown(() => balancer.stop());
  const keys = fortyKeys();
  const home = await mapKeys(balancer.port, keys);
  for (const key of keys) t.equal(home.get(key)?.worker, preference(key, SLOTS)[0], `${key} starts on its first choice`);
  const pidOfSlot = new Map([...home.values()].map((landing) => [landing.worker, landing.pid]));
  const victimPid = pidOfSlot.get(VICTIM) as number;

  process.kill(victimPid, 'SIGSTOP');
  t.teardown(() => {
    if (isAlive(victimPid)) process.kill(victimPid, 'SIGCONT');
  });
  await waitForState(balancer, VICTIM, 'unresponsive', 15_000);
  t.pass('GET /workers shows the stopped worker as unresponsive');
  const metrics = parseExposition(await getMetricsText(balancer.adminPort as number));
  t.equal(sumOf(metrics, 'sticky_workers', { state: 'unresponsive' }), 1, 'sticky_workers{state="unresponsive"} is 1');
  t.equal(sumOf(metrics, 'sticky_worker_unresponsive_total', { worker: String(VICTIM), reason: 'silent' }), 1, 'counted once, as silent');

  const during = new Map<string, DemoAnswer>();
  for (const key of keys) during.set(key, await demoGetWithin(balancer.port, key, 5000));
  for (const key of keys) {
    const [first, second] = preference(key, SLOTS) as [number, number];
    const landed = during.get(key) as DemoAnswer;
    if (first !== VICTIM) t.equal(landed.pid, home.get(key)?.pid, `${key} (slot ${first}) stays on its worker`);
    else t.equal(landed.pid, pidOfSlot.get(second), `${key} (the stopped worker's) goes to its next choice, slot ${second}`);
  }
  t.ok(
    (await balancer.waitForLog((line) => line.msg === "worker unresponsive; its keys go to their next slot" && line.workerPid === victimPid, 1000)) !== undefined,
    'logged once with the pid',
  );

  process.kill(victimPid, 'SIGCONT');
  await waitForState(balancer, VICTIM, 'ready', 15_000, victimPid);
  const after = await mapKeys(balancer.port, keys);
  const moved = keys.filter((key) => after.get(key)?.pid !== home.get(key)?.pid);
  t.same(moved, [], 'after SIGCONT every key is on its first worker again (the same process)');
  await balancer.waitForLog((line) => line.msg === 'worker responsive again; its keys come back' && line.workerPid === victimPid, 5000);
});

for (const handoff of ['auto', 'ipc'] as const)
t.test(`an unacknowledged hand-off (workers.handoff "${handoff}") marks the worker unresponsive before silence would; that connection waits for it`, async (t) => {
  const balancer = await startBalancer({ workers: { count: SLOTS, app: DEMO_APP, handoff, heartbeatMs: 100, unresponsiveMs: 120_000, ackTimeoutMs: 300, killUnresponsiveMs: 0 } });
  t.teardown(() => balancer.stop());
  const keys = fortyKeys();
  const home = await mapKeys(balancer.port, keys);
  const pidOfSlot = new Map([...home.values()].map((landing) => [landing.worker, landing.pid]));
  const victimPid = pidOfSlot.get(VICTIM) as number;
  const victimKey = keys.find((key) => preference(key, SLOTS)[0] === VICTIM) as string;

  process.kill(victimPid, 'SIGSTOP');
  t.teardown(() => {
    if (isAlive(victimPid)) process.kill(victimPid, 'SIGCONT');
  });
  // Delivered to the stopped worker: nobody acknowledges it.
  const waiting = demoGetWithin(balancer.port, victimKey, 60_000);
  await waitForState(balancer, VICTIM, 'unresponsive', 15_000);
  const metrics = parseExposition(await getMetricsText(balancer.adminPort as number));
  t.equal(sumOf(metrics, 'sticky_worker_unresponsive_total', { worker: String(VICTIM), reason: 'ack-timeout' }), 1, 'counted as an ack timeout');
  const next = await demoGetWithin(balancer.port, victimKey, 5000);
  t.equal(next.pid, pidOfSlot.get(preference(victimKey, SLOTS)[1] as number), 'a new connection of its key goes to the next choice');

  process.kill(victimPid, 'SIGCONT');
  const served = await waiting;
  t.equal(served.pid, victimPid, 'the connection it already had is served by it after SIGCONT (never by two processes)');
  await waitForState(balancer, VICTIM, 'ready', 15_000, victimPid);
  t.equal((await demoGetWithin(balancer.port, victimKey, 5000)).pid, victimPid, 'and its key is back');
});

t.test('a worker unresponsive for killUnresponsiveMs is killed and respawned into its slot', async (t) => {
  const balancer = await startBalancer({ workers: { count: SLOTS, app: DEMO_APP, heartbeatMs: 100, unresponsiveMs: 500, ackTimeoutMs: 400, killUnresponsiveMs: 1500 } });
  t.teardown(() => balancer.stop());
  const keys = fortyKeys();
  const home = await mapKeys(balancer.port, keys);
  const victimPid = [...home.values()].find((landing) => landing.worker === VICTIM)?.pid as number;

  process.kill(victimPid, 'SIGSTOP');
  t.teardown(() => {
    if (isAlive(victimPid)) process.kill(victimPid, 'SIGCONT');
  });
  const respawned = await pollUntil(
    async () => {
      const entry = await slotState(balancer, VICTIM);
      return entry?.state === 'ready' && entry.pid !== victimPid ? entry : undefined;
    },
    30_000,
    100,
  );
  t.not(respawned.pid, victimPid, `slot ${VICTIM} has a new worker (pid ${respawned.pid})`);
  await pollUntil(() => (isAlive(victimPid) ? undefined : true), 10_000);
  t.pass('the stopped worker was killed');
  await balancer.waitForLog((line) => line.msg === 'worker unresponsive too long; killing it' && line.workerPid === victimPid, 1000);
  const after = await mapKeys(balancer.port, keys);
  for (const key of keys) {
    const landed = after.get(key);
    if (preference(key, SLOTS)[0] === VICTIM) t.equal(landed?.pid, respawned.pid, `${key} is on the respawned worker`);
    else t.equal(landed?.pid, home.get(key)?.pid, `${key} never moved`);
  }
});
