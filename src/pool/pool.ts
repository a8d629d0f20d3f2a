import cluster, { type Worker } from 'node:cluster';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MasterMetrics } from '../admin/metrics.js';
import type { ResolvedConfig } from '../config/load.js';
import { MAX_SLOTS, pickSlot } from '../ring/rendezvous.js';
import { isWorkerMessage, type MasterMessage, type WorkerMessage } from './messages.js';
import { canTransition, type SlotState } from './slot-state.js';

/** A worker process living in a slot. */
export interface WorkerProc {
  readonly slot: number;
  readonly worker: Worker;
  readonly pid: number;
  state: SlotState;
  /** Open client connections, as the worker last reported. */
  active: number;
  readonly startedAt: number;
}

/** One entry of `GET /workers`. */
export interface SlotView {
  readonly slot: number;
  readonly pid: number | null;
  readonly state: SlotState;
  readonly connections: number;
}

/** What the pool tells its owner about. */
export interface PoolHooks {
  /** A worker acknowledged connection `id`. */
  onAck(proc: WorkerProc, id: number): void;
  /** A worker process is gone (crash, kill or planned stop): its unacknowledged connections need a new home. */
  onExit(proc: WorkerProc): void;
  /** A worker handed a connection back (key.reuse "handback"). */
  onHandback(proc: WorkerProc, message: Extract<WorkerMessage, { type: 'handback' }>, socket: Socket | undefined): void;
}

/** Crash-loop backoff: first respawn at once, then doubling up to this. */
const MAX_RESPAWN_DELAY_MS = 10_000;
/** A worker that lived this long is healthy: its slot's crash count resets. */
const HEALTHY_UPTIME_MS = 10_000;

/**
 * The worker slots: forks, readiness, respawn into the same slot, scaling and
 * draining. Slot ids are stable; routing reads only `readyMask`.
 */
export class WorkerPool {
  /** `readyMask[slot]` is 1 when the slot's current worker takes connections. */
  readonly readyMask = new Uint8Array(MAX_SLOTS);
  /** The current worker of each slot (null between a crash and its respawn). */
  private readonly current: Array<WorkerProc | null> = [];
  /** Slots the pool is meant to have (`slotCount` can be larger while the highest drain). */
  private target = 0;
  /** Workers on their way out (scale-down, rolling restart, shutdown). */
  private readonly retiring = new Set<WorkerProc>();
  private readonly crashes: number[] = [];
  private readonly respawnTimers = new Map<number, NodeJS.Timeout>();
  private readonly readyWaiters: Array<() => void> = [];
  private stopping = false;
  private config: ResolvedConfig;

  constructor(
    config: ResolvedConfig,
    private readonly runtimePath: string,
    private readonly log: Logger,
    private readonly metrics: MasterMetrics,
    private readonly hooks: PoolHooks,
  ) {
    this.config = config;
    cluster.setupPrimary({ exec: runtimePath, serialization: 'advanced', args: [] });
  }

  /** Number of slots routing considers (the highest may be draining). */
  get slotCount(): number {
    return this.current.length;
  }

  /** The slots the pool aims for. */
  get targetCount(): number {
    return this.target;
  }

  /** Uses a new config for workers forked from now on (SIGHUP). */
  setConfig(config: ResolvedConfig): void {
    this.config = config;
  }

  /** The best ready slot for a key hash, or -1 when none is ready. */
  pick(keyHash: number): number {
    return pickSlot(keyHash, this.current.length, this.readyMask);
  }

  /** The current worker of a slot. */
  worker(slot: number): WorkerProc | null {
    return this.current[slot] ?? null;
  }

  /** Slots for `GET /workers` (current workers only, lowest slot first). */
  view(): SlotView[] {
    return this.current.map((proc, slot) => ({
      slot,
      pid: proc?.pid ?? null,
      state: proc?.state ?? 'empty',
      connections: proc?.active ?? 0,
    }));
  }

  /** Client connections open in all workers, as they last reported. */
  activeConnections(): number {
    let total = 0;
    for (const proc of this.current) total += proc?.active ?? 0;
    for (const proc of this.retiring) total += proc.active;
    return total;
  }

  /** Count of slots whose worker is ready. */
  readyCount(): number {
    let count = 0;
    for (let slot = 0; slot < this.current.length; slot++) count += this.readyMask[slot] as number;
    return count;
  }

  /** Resolves when every slot below the target has a ready worker. */
  whenAllReady(): Promise<void> {
    if (this.allReady()) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private allReady(): boolean {
    return this.current.length === this.target && this.readyCount() === this.target;
  }

  /** Scales to `count` slots: new slots fork at the top; the highest slots drain first. */
  scaleTo(count: number): void {
    if (this.stopping) return;
    count = Math.max(1, Math.min(MAX_SLOTS, Math.floor(count)));
    this.target = count;
    while (this.current.length < count) {
      const slot = this.current.length;
      this.current.push(null);
      this.fork(slot);
    }
    while (this.current.length > count) {
      const slot = this.current.length - 1;
      const proc = this.current[slot] ?? null;
      this.cancelRespawn(slot);
      this.current.pop();
      this.readyMask[slot] = 0;
      if (proc) this.retire(proc);
    }
    this.updateGauges();
    this.settleWaiters();
  }

  /** Sends a message (and a socket) to a worker; `done` gets the send error, if any. */
  send(proc: WorkerProc, message: MasterMessage, socket: Socket | undefined, done: (error: Error | null) => void): void {
    if (!proc.worker.isConnected()) {
      done(new Error('worker channel closed'));
      return;
    }
    try {
      // keepOpen: the master keeps its copy of the handle until the worker's
      // own 'ack', so a worker dying mid-transfer cannot lose the connection.
      proc.worker.send(message, socket as never, { keepOpen: true }, (error) => done(error ?? null));
    } catch (error) {
      done(error as Error);
    }
  }

  /** Replaces every worker, one slot at a time; each new worker is ready before the old one drains. */
  async rollingRestart(): Promise<void> {
    for (let slot = 0; slot < this.current.length && !this.stopping; slot++) {
      const old = this.current[slot];
      if (!old || old.state !== 'ready') continue;
      const next = this.fork(slot, old);
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (next.state === 'ready' || next.state === 'dead' || this.stopping) resolve();
          else setTimeout(check, 20);
        };
        check();
      });
    }
  }

  /** Drains every worker (bounded) and resolves when all have exited. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const timer of this.respawnTimers.values()) clearTimeout(timer);
    this.respawnTimers.clear();
    for (let slot = 0; slot < this.current.length; slot++) {
      const proc = this.current[slot];
      this.readyMask[slot] = 0;
      if (proc) this.retire(proc);
    }
    this.current.length = 0;
    const deadline = Date.now() + this.config.workers.drainTimeoutMs + 2000;
    while (this.retiring.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const proc of this.retiring) proc.worker.process.kill('SIGKILL');
  }

  /** Forks a worker into `slot`. With `replacing`, the old one serves until the new one is ready. */
  private fork(slot: number, replacing?: WorkerProc): WorkerProc {
    const worker = cluster.fork({
      STICKY_SLOT: String(slot),
      STICKY_CONFIG: JSON.stringify(this.config),
    });
    const proc: WorkerProc = { slot, worker, pid: worker.process.pid ?? 0, state: 'starting', active: 0, startedAt: Date.now() };
    if (!replacing) this.current[slot] = proc;
    worker.on('message', (message: unknown, handle: unknown) => this.onMessage(proc, message, handle as Socket | undefined, replacing));
    worker.on('exit', (code, signal) => this.onExit(proc, code, (signal || null) as NodeJS.Signals | null));
    // An IPC error (EPIPE to a dying worker) must not become an uncaught exception.
    worker.on('error', (error) => this.log.warn({ worker: slot, pid: proc.pid, err: error.message }, 'worker channel error'));
    this.log.info({ worker: slot, pid: proc.pid }, 'worker starting');
    this.updateGauges();
    return proc;
  }

  private transition(proc: WorkerProc, to: SlotState): void {
    if (!canTransition(proc.state, to)) return;
    proc.state = to;
    this.updateGauges();
  }

  private onMessage(proc: WorkerProc, message: unknown, handle: Socket | undefined, replacing?: WorkerProc): void {
    if (!isWorkerMessage(message)) return;
    switch (message.type) {
      case 'ready': {
        if (proc.state !== 'starting') return;
        if (replacing) {
          // Rolling restart: the new worker takes the slot, the old one drains.
          const holder = this.current[proc.slot];
          if (this.stopping || proc.slot >= this.current.length) {
            this.retire(proc);
            return;
          }
          if (holder === replacing) {
            this.current[proc.slot] = proc;
            this.retire(replacing);
          } else if (holder === null) {
            // The old worker died meanwhile: adopt the replacement instead of respawning.
            this.cancelRespawn(proc.slot);
            this.current[proc.slot] = proc;
          } else {
            this.retire(proc);
            return;
          }
        }
        this.transition(proc, 'ready');
        this.readyMask[proc.slot] = 1;
        this.log.info({ worker: proc.slot, pid: proc.pid }, 'worker ready');
        this.settleWaiters();
        return;
      }
      case 'ack':
        this.hooks.onAck(proc, message.id);
        return;
      case 'active':
        proc.active = message.count;
        if (this.current[proc.slot] === proc) this.metrics.active.set({ worker: String(proc.slot) }, message.count);
        return;
      case 'handback':
        this.hooks.onHandback(proc, message, handle);
        return;
    }
  }

  /** Stops routing to a worker and asks it to finish its connections. */
  private retire(proc: WorkerProc): void {
    if (proc.state === 'dead' || this.retiring.has(proc)) return;
    this.retiring.add(proc);
    this.transition(proc, 'draining');
    const timeoutMs = this.config.workers.drainTimeoutMs;
    this.log.info({ worker: proc.slot, pid: proc.pid, timeoutMs }, 'worker draining');
    this.send(proc, { type: 'drain', timeoutMs }, undefined, () => {});
    // The worker exits by itself when drained; this is the bound if it does not.
    setTimeout(() => {
      if (proc.state !== 'dead') proc.worker.process.kill('SIGKILL');
    }, timeoutMs + 1000).unref();
  }

  private onExit(proc: WorkerProc, code: number | null, signal: NodeJS.Signals | null): void {
    const planned = proc.state === 'draining';
    proc.state = 'dead';
    this.retiring.delete(proc);
    const isCurrent = this.current[proc.slot] === proc;
    if (isCurrent) {
      this.readyMask[proc.slot] = 0;
      this.current[proc.slot] = null;
      this.metrics.active.set({ worker: String(proc.slot) }, 0);
    }
    this.hooks.onExit(proc);
    this.updateGauges();
    if (planned || !isCurrent || this.stopping) {
      this.log.info({ worker: proc.slot, pid: proc.pid, code, signal }, 'worker stopped');
      return;
    }
    // An unplanned exit: respawn into the same slot, backing off while it crash-loops.
    const uptime = Date.now() - proc.startedAt;
    const crashes = uptime >= HEALTHY_UPTIME_MS ? 0 : (this.crashes[proc.slot] ?? 0) + 1;
    this.crashes[proc.slot] = crashes;
    const delayMs = crashes <= 1 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, 100 * 2 ** (crashes - 2));
    this.log.warn({ worker: proc.slot, pid: proc.pid, code, signal, delayMs, crashes }, 'worker exited; respawning');
    this.metrics.respawns.inc({ worker: String(proc.slot) });
    const timer = setTimeout(() => {
      this.respawnTimers.delete(proc.slot);
      if (!this.stopping && proc.slot < this.current.length && this.current[proc.slot] === null) this.fork(proc.slot);
    }, delayMs);
    this.respawnTimers.set(proc.slot, timer);
  }

  private cancelRespawn(slot: number): void {
    const timer = this.respawnTimers.get(slot);
    if (timer) clearTimeout(timer);
    this.respawnTimers.delete(slot);
  }

  private settleWaiters(): void {
    if (!this.allReady()) return;
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }

  private updateGauges(): void {
    const counts: Record<SlotState, number> = { empty: 0, starting: 0, ready: 0, draining: 0, dead: 0 };
    for (const proc of this.current) counts[proc ? proc.state : 'empty']++;
    for (const proc of this.retiring) counts[proc.state]++;
    for (const [state, count] of Object.entries(counts)) this.metrics.workers.set({ state }, count);
  }
}
