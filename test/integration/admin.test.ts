import t from 'tap';
import { getMetricsText, getWorkers, putWorkers } from '../helpers/admin.js';
import { DEMO_APP, connect, demoGet, pollUntil, readAll, request, startBalancer } from '../helpers/balancer.js';
import { clientKeys, preference } from '../helpers/pool.js';
import { parseExposition, samplesOf, sumOf } from '../helpers/prometheus.js';

t.setTimeout(180_000);

t.test('GET /healthz and GET /workers', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP } });
  t.teardown(() => balancer.stop());
  const admin = balancer.adminPort as number;
  const health = await request(admin, { path: '/healthz' });
  t.equal(health.status, 200);
  t.same(JSON.parse(health.body.toString()), { status: 'ok', workers: 2 });
  const workers = await getWorkers(admin);
  t.same(
    workers.map(({ slot, state, connections }) => ({ slot, state, connections })),
    [
      { slot: 0, state: 'ready', connections: 0 },
      { slot: 1, state: 'ready', connections: 0 },
    ],
  );
  t.ok(workers.every((worker) => typeof worker.pid === 'number' && worker.pid > 0), 'each slot names its pid');
  t.equal((await putWorkers(admin, 'two')).status, 400, 'a bad count is refused');
  t.equal((await getWorkers(admin)).length, 2, 'and changes nothing');
});

t.test('GET /metrics is valid Prometheus text with the master’s counters and the workers’ aggregated', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2, app: DEMO_APP }, key: { order: ['cookie', 'proxy', 'forwarded', 'remote'] }, limits: { peekTimeoutMs: 300 } });
  t.teardown(() => balancer.stop());
  const admin = balancer.adminPort as number;

  // Hand-offs by key source: 20 forwarded, 10 cookie.
  const keys = clientKeys(20);
  const bySlot = [0, 0];
  for (const key of keys) {
    const answer = await demoGet(balancer.port, { 'x-forwarded-for': key });
    bySlot[answer.worker]++;
  }
  for (let i = 0; i < 10; i++) await demoGet(balancer.port, { cookie: `sid=s${i}` });
  // Two refusals: a client that sends nothing (peek timeout), a malformed PROXY header.
  const silent = await connect(balancer.port);
  await readAll(silent);
  const garbage = await connect(balancer.port);
  garbage.write('PROXY TCP4 not-an-address\r\n');
  await readAll(garbage);
  // One open keep-alive connection, to see active connections per worker.
  const held = await connect(balancer.port);
  const heldKey = keys[0] as string;
  held.write(`GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${heldKey}\r\n\r\n`);
  const heldSlot = String(preference(heldKey, 2)[0]);

  const exposition = await pollUntil(async () => {
    const parsed = parseExposition(await getMetricsText(admin));
    return sumOf(parsed, 'sticky_active_connections', { worker: heldSlot }) >= 1 ? parsed : undefined;
  });
  t.pass('parsed as Prometheus text (one TYPE per family, every sample typed, labels well formed)');
  const types: Record<string, string> = {
    sticky_handoffs_total: 'counter',
    sticky_handoff_seconds: 'histogram',
    sticky_refused_connections_total: 'counter',
    sticky_active_connections: 'gauge',
    sticky_worker_respawns_total: 'counter',
    sticky_fallbacks_total: 'counter',
    sticky_workers: 'gauge',
    sticky_worker_requests_total: 'counter',
    sticky_worker_connections_total: 'counter',
  };
  for (const [name, type] of Object.entries(types)) t.equal(exposition.types.get(name), type, `${name} is a ${type}`);

  for (const slot of [0, 1]) {
    t.equal(sumOf(exposition, 'sticky_handoffs_total', { worker: String(slot), key_source: 'forwarded' }), bySlot[slot] + (String(slot) === heldSlot ? 1 : 0), `forwarded hand-offs to worker ${slot}`);
  }
  t.equal(sumOf(exposition, 'sticky_handoffs_total', { key_source: 'cookie' }), 10, 'cookie hand-offs');
  t.equal(sumOf(exposition, 'sticky_handoff_seconds_count'), 31, 'one latency observation per hand-off');
  t.equal(sumOf(exposition, 'sticky_handoff_seconds_bucket', { le: '+Inf' }), 31);
  t.equal(sumOf(exposition, 'sticky_refused_connections_total', { reason: 'ERR_PEEK_TIMEOUT' }), 1, 'refused: peek timeout');
  t.equal(sumOf(exposition, 'sticky_refused_connections_total'), 2, 'refused: two in all, by reason');
  t.equal(samplesOf(exposition, 'sticky_refused_connections_total').length, 2, 'two distinct reasons');
  t.equal(sumOf(exposition, 'sticky_workers', { state: 'ready' }), 2);
  // The workers' own registries, summed by prom-client's aggregation.
  t.equal(sumOf(exposition, 'sticky_worker_connections_total'), 31, 'workers’ connections, summed over both');
  t.equal(sumOf(exposition, 'sticky_worker_requests_total'), 31, 'workers’ requests, summed over both');
  t.ok(sumOf(exposition, 'sticky_worker_process_resident_memory_bytes') > 0, 'workers’ default metrics, summed');
  held.destroy();

  // A respawn and the fallback of a request sent into the window.
  const workers = await getWorkers(admin);
  const victim = workers[1]?.pid as number;
  process.kill(victim, 'SIGKILL');
  const victimKey = keys.find((key) => preference(key, 2)[0] === 1) as string;
  const answer = await demoGet(balancer.port, { 'x-forwarded-for': victimKey });
  t.equal(answer.worker, 0, 'the victim’s key went to its next choice');
  await pollUntil(async () => {
    const list = await getWorkers(admin);
    return list[1]?.state === 'ready' && list[1].pid !== victim ? true : undefined;
  });
  const after = parseExposition(await getMetricsText(admin));
  t.equal(sumOf(after, 'sticky_worker_respawns_total', { worker: '1' }), 1, 'respawn counted for slot 1');
  t.ok(sumOf(after, 'sticky_fallbacks_total') >= 1, `fallback counted (${samplesOf(after, 'sticky_fallbacks_total').map((s) => s.labels.reason)})`);
});

t.test('"admin": false turns the admin API off', async (t) => {
  const balancer = await startBalancer({ workers: { count: 1, app: DEMO_APP }, admin: false });
  t.teardown(() => balancer.stop());
  t.equal(balancer.adminPort, null);
  t.notOk(
    balancer.logs.some((line) => line.msg === 'admin listening'),
    'no admin listener',
  );
  t.equal((await demoGet(balancer.port)).worker, 0, 'the balancer itself works');
});
