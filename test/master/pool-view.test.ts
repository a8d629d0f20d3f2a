import t from 'tap';
import { PoolViewBroadcaster } from '../../src/master/pool-view.js';
import type { WorkerPool } from '../../src/master/supervisor/pool.js';
import type { WorkerProc } from '../../src/master/supervisor/worker-proc.js';
import type { PlacementView } from '../../src/shared/placement.js';
import type { MasterMessage } from '../../src/shared/wire/ipc.js';

/** A pool stand-in whose view the test sets; every message sent is recorded. */
function fakePool(slots: number) {
  const state = { ready: new Uint8Array(slots).fill(1), full: undefined as Uint8Array | undefined, pids: Array.from({ length: slots }, (_, slot) => 100 + slot) };
  const sent: Array<{ slot: number; message: MasterMessage }> = [];
  const pool = {
    slotCount: slots,
    get readyMask() {
      return state.ready;
    },
    placementView: (): PlacementView => ({ slotCount: slots, ready: state.ready, full: state.full }),
    worker: (slot: number) => ({ slot, pid: state.pids[slot] }) as unknown as WorkerProc,
    send: (proc: WorkerProc, message: MasterMessage) => sent.push({ slot: proc.slot, message }),
  };
  return { pool: pool as unknown as WorkerPool, state, sent };
}

t.test('the view goes to every worker once per change: readiness, a replaced worker, the load bound', async (t) => {
  const { pool, state, sent } = fakePool(3);
  const view = new PoolViewBroadcaster(pool);
  t.teardown(() => view.stop());
  view.check(false);
  t.same(sent.map((s) => s.slot), [0, 1, 2], 'the first view, to each worker');
  t.same(sent[0]?.message, { type: 'pool-view', slotCount: 3, ready: [1, 1, 1], pids: [100, 101, 102] });
  view.check(false);
  view.check(true);
  t.equal(sent.length, 3, 'nothing changed, nothing sent');

  state.ready[1] = 0;
  view.check(false);
  t.same(sent.slice(3).map((s) => s.message), Array(3).fill({ type: 'pool-view', slotCount: 3, ready: [1, 0, 1], pids: [100, 0, 102] }), 'a slot not ready');

  state.ready[1] = 1;
  state.pids[1] = 555;
  view.check(false);
  t.equal(sent.length, 9, 'a replaced worker (same mask, new pid) is a change');

  state.full = Uint8Array.from([0, 0, 1]);
  view.check(false);
  t.equal(sent.length, 9, 'the load bound is not looked at before each hand-off');
  view.check(true);
  t.same(sent[9]?.message, { type: 'pool-view', slotCount: 3, ready: [1, 1, 1], pids: [100, 555, 102], full: [0, 0, 1] }, 'it is on the steady check');
  view.check(true);
  t.equal(sent.length, 12, 'and only once');
});

t.test('before each hand-off, an unchanged pool costs no view: only the ready mask and pids are read', async (t) => {
  const { pool, state } = fakePool(2);
  let views = 0;
  const counting = Object.assign(Object.create(pool) as WorkerPool, {
    placementView: () => {
      views++;
      return pool.placementView();
    },
  });
  const view = new PoolViewBroadcaster(counting);
  t.teardown(() => view.stop());
  view.check(false);
  t.equal(views, 1, 'the first view is built and sent');
  for (let i = 0; i < 100; i++) view.check(false);
  t.equal(views, 1, 'a hundred hand-offs later, none built again');
  state.ready[0] = 0;
  view.check(false);
  t.equal(views, 2, 'a change builds it');
});
