import { MAX_SLOTS } from '../shared/ring/rendezvous.js';
import type { WorkerPool } from './supervisor/pool.js';

/** How often the master looks for a changed pool view when no connection comes. */
const POOL_VIEW_CHECK_MS = 100;

/**
 * Sends the workers the pool view (slot count, ready slots with their pids,
 * slots at the load bound) whenever it changed since the last time: with
 * key.reuse "handback" and "forward" each worker places its later requests
 * with it, by the same function as the master (src/shared/placement.ts), and
 * finds the other workers' links by their pids.
 *
 * Readiness is checked before every hand-off, the load bound only every
 * {@link POOL_VIEW_CHECK_MS}: it may flip with every connection, and a message
 * to every worker each time would cost more than a request placed on a slot's
 * neighbour for a moment. A replaced worker (same mask, new pid) counts as a
 * change so that it gets the view too.
 */
export class PoolViewBroadcaster {
  /** What the workers were last sent: the slot count, each slot's ready pid (0: not ready), the slots at the bound. */
  private sentCount = -1;
  private readonly sentPids = new Float64Array(MAX_SLOTS);
  private fullSignature = '';
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pool: WorkerPool) {
    this.timer = setInterval(() => this.check(true), POOL_VIEW_CHECK_MS).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Sends the view if it changed (`withLoad`: the load bound counts as a change too). */
  check(withLoad: boolean): void {
    // Before every hand-off: the ready mask and pids only, without building the view (the load bound is not looked at here).
    const readyChanged = this.readyChanged();
    if (!withLoad && !readyChanged) return;
    const view = this.pool.placementView();
    const count = view.slotCount;
    let fullSignature = '';
    if (withLoad && view.full !== undefined) for (let slot = 0; slot < count; slot++) fullSignature += view.full[slot] === 1 ? '1' : '0';
    if (!readyChanged && fullSignature === this.fullSignature) return;
    if (withLoad) this.fullSignature = fullSignature;
    const ready = Array.from(view.ready.subarray(0, count));
    const full = view.full === undefined ? undefined : Array.from(view.full.subarray(0, count));
    // The pids name each ready worker's link (key.reuse "forward", src/worker/link/front.ts).
    const pids = ready.map((isReady, slot) => (isReady === 1 ? (this.pool.worker(slot)?.pid ?? 0) : 0));
    this.sentCount = count;
    this.sentPids.set(pids);
    for (let slot = 0; slot < count; slot++) {
      const proc = this.pool.worker(slot);
      if (proc) this.pool.send(proc, { type: 'pool-view', slotCount: count, ready, pids, ...(full === undefined ? {} : { full }) }, undefined, ignoreError);
    }
  }

  /** Whether a slot came or went, or its ready worker changed (a replaced worker: same mask, new pid), since the last view sent. */
  private readyChanged(): boolean {
    const count = this.pool.slotCount;
    if (count !== this.sentCount) return true;
    const mask = this.pool.readyMask;
    for (let slot = 0; slot < count; slot++) {
      const pid = mask[slot] === 1 ? (this.pool.worker(slot)?.pid ?? 0) : 0;
      if (pid !== this.sentPids[slot]) return true;
    }
    return false;
  }
}

function ignoreError(): void {
  // A worker that cannot take the message is going away; the next view goes to its successor.
}
