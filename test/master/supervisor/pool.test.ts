import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { MasterMetrics } from '../../../src/master/admin/metrics.js';
import { WorkerPool, type PoolHooks } from '../../../src/master/supervisor/pool.js';
import type { WorkerProc } from '../../../src/master/supervisor/worker-proc.js';
import { ROOT } from '../../helpers/balancer.js';
import { resolvedConfig } from '../../helpers/worker.js';

/** Speaks the master's IPC protocol and nothing else: the pool's lifecycle without an app. */
const FAKE_RUNTIME = join(ROOT, 'test', 'fixtures', 'fake-runtime.js');

t.setTimeout(120_000);

function pool(t: Tap.Test, workers: Record<string, unknown> = {}) {
  const config = resolvedConfig({ workers: { count: 2, handoff: 'ipc', heartbeatMs: 100, unresponsiveMs: 600, ackTimeoutMs: 400, drainTimeoutMs: 2000, ...workers } });
  const exits: WorkerProc[] = [];
  const hooks: PoolHooks = { onAck() {}, onExit: (proc) => exits.push(proc), onHandback() {}, onHandbackHandle() {} };
  const metrics = new MasterMetrics();
  const supervisor = new WorkerPool(config, FAKE_RUNTIME, pino({ level: 'silent' }), metrics, hooks);
  t.teardown(() => supervisor.stopAll());
  return { supervisor, exits, metrics };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('scale up, respawn into the same slot after a crash, scale down by draining the highest slot', async (t) => {
  const { supervisor, exits, metrics } = pool(t);
  supervisor.scaleTo(2);
  t.equal(await supervisor.whenAllReady(20_000), true);
  const before = supervisor.view();
  t.same(before.map((slot) => [slot.slot, slot.state]), [[0, 'ready'], [1, 'ready']]);
  t.same(Array.from(supervisor.readyMask.subarray(0, 2)), [1, 1]);

  const crashed = supervisor.worker(1) as WorkerProc;
  crashed.worker.process.kill('SIGKILL');
  await until('slot 1 to come back with a new pid', () => {
    const now = supervisor.worker(1);
    return now !== null && now.pid !== crashed.pid && now.state === 'ready';
  });
  t.ok(exits.includes(crashed), 'its owner heard it go (what it had not acknowledged is re-routed)');
  t.equal(supervisor.worker(0)?.pid, before[0]?.pid, 'the other slot is untouched');
  const respawns = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'sticky_worker_respawns_total');
  t.equal(respawns?.values.find((v) => v.labels.worker === '1')?.value, 1);

  const leaving = supervisor.worker(1) as WorkerProc;
  supervisor.scaleTo(1);
  t.equal(supervisor.slotCount, 1);
  t.equal(supervisor.readyMask[1], 0, 'routing stops at once');
  await until('the drained worker to exit', () => leaving.state === 'dead');
  t.equal(supervisor.readyCount(), 1);
});

t.test("metrics are gathered from every worker; a rolling restart replaces each slot's worker, new before old", async (t) => {
  const { supervisor } = pool(t);
  supervisor.scaleTo(2);
  t.equal(await supervisor.whenAllReady(20_000), true);
  const answers = await supervisor.collectWorkerMetrics(5000);
  t.same(answers.map((families) => (families[0] as { values: Array<{ value: number }> }).values[0]?.value).sort(), [0, 1], "one answer per worker, each its slot's");
  const pids = supervisor.view().map((slot) => slot.pid);
  const restarted = await supervisor.rollingRestart();
  t.same(restarted, { replaced: 2, failedSlot: null });
  const after = supervisor.view();
  t.same(after.map((slot) => slot.state), ['ready', 'ready']);
  t.ok(after.every((slot, i) => slot.pid !== pids[i]), 'every slot has a new worker');
});

t.test('a stopped worker is marked unresponsive and its slot leaves the ready mask; it comes back when it answers', async (t) => {
  const { supervisor } = pool(t);
  supervisor.scaleTo(2);
  t.equal(await supervisor.whenAllReady(20_000), true);
  const stopped = supervisor.worker(0) as WorkerProc;
  stopped.worker.process.kill('SIGSTOP');
  t.teardown(() => stopped.worker.process.kill('SIGCONT'));
  await until('slot 0 to be unresponsive', () => stopped.state === 'unresponsive');
  t.equal(supervisor.readyMask[0], 0);
  t.equal(supervisor.choose(12345).slot, 1, 'its keys go to the other slot');
  stopped.worker.process.kill('SIGCONT');
  await until('slot 0 to be ready again', () => stopped.state === 'ready');
  t.equal(supervisor.readyMask[0], 1);
  t.equal(supervisor.worker(0), stopped, 'the same worker, not a new one');
});

t.test('a worker that never gets ready: whenAllReady gives up at its timeout', async (t) => {
  process.env.FAKE_NEVER_READY = '1';
  t.teardown(() => delete process.env.FAKE_NEVER_READY);
  const { supervisor } = pool(t, { count: 1 });
  supervisor.scaleTo(1);
  t.equal(await supervisor.whenAllReady(500), false);
  t.same(supervisor.view().map((slot) => slot.state), ['starting']);
});
