import cluster from 'node:cluster';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MasterMetrics } from '../admin/metrics.js';
import type { ResolvedConfig } from '../../shared/config/load.js';
import { reuseMode } from '../../shared/key/reuse.js';
import { MAX_SLOTS } from '../../shared/ring/rendezvous.js';
import { HEALTHY_UPTIME_MS, respawnDelayMs } from './backoff.js';
import { fullSlots } from '../../shared/ring/bounded-load.js';
import { placeKey, type PlacementView, type SlotChoice } from '../../shared/placement.js';
import type { ConnectionInfo } from '../../shared/connection-info.js';
import { canOpenTcp, loadFdPass, type FdPassBinding } from '../../shared/wire/fd-channel.js';
import type { BatchEntry, HandbackKey } from '../../shared/wire/fd-batch.js';
import { sendConnection, sendMessage } from '../transport/worker-channel.js';
import { isMessage, type MasterMessage, type PeerOutcome, type WorkerMessage } from '../../shared/wire/ipc.js';
import { canTransition, takesConnections, type SlotState } from './slot-state.js';
import type { Unresponsive } from './liveness.js';
import { forkWorker, monotonicMs, type WorkerProc } from './worker-proc.js';
import { LinkDirectory } from './link-directory.js';
import { MetricsRequests } from './metrics-requests.js';

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
  /**
   * A worker can take nothing more (its channel closed or it exited): its
   * unacknowledged connections need a new home. May be called twice for one
   * worker (disconnect, then exit); the owner must be idempotent.
   */
  onExit(proc: WorkerProc): void;
  /** With many nodes: what a worker's forward to another node found. */
  onPeerReport?(peer: string, outcome: PeerOutcome): void;
  /** A worker handed a connection back (key.reuse "handback") on Node's IPC channel. */
  onHandback(proc: WorkerProc, message: Extract<WorkerMessage, { type: 'handback' }>, socket: Socket | undefined): void;
  /** A worker handed a connection back on its fd channel: `handle` is a raw TCP handle, the master's now. */
  onHandbackHandle(proc: WorkerProc, entry: BatchEntry & { readonly handback: HandbackKey }, handle: object): void;
  /** A worker closed connections counted against these clients (limits.perClient.maxConnections). */
  onClientsClosed?(proc: WorkerProc, clients: readonly string[]): void;
  /**
   * A worker went away before it was ever ready (its app did not load):
   * `proc.failure` holds what it said, if anything. Called once, after every
   * message it sent was read.
   */
  onStartFailed?(proc: WorkerProc): void;
}

/** How long `GET /metrics` waits for the workers' registries. */
const WORKER_METRICS_TIMEOUT_MS = 2000;
/** Past the drain timeout, how long a worker gets to exit by itself before SIGKILL. */
const DRAIN_KILL_GRACE_MS = 1000;

/**
 * The worker slots: forks, readiness, respawn into the same slot, scaling,
 * draining and rolling restarts. Slot ids are stable (placement depends on
 * them, not on pids); routing reads only `readyMask` and the slot count.
 */
export class WorkerPool {
  /** `readyMask[slot]` is 1 when the slot's current worker takes connections. */
  readonly readyMask = new Uint8Array(MAX_SLOTS);
  /** The current worker of each slot (null between a crash and its respawn). */
  private readonly current: Array<WorkerProc | null> = [];
  /** Slots the pool aims for. */
  private target = 0;
  /** Workers on their way out (scale-down, rolling restart, shutdown). */
  private readonly retiring = new Set<WorkerProc>();
  /** Rolling-restart replacements not yet ready (not in `current`). */
  private readonly replacements = new Set<WorkerProc>();
  private readonly crashes: number[] = [];
  private readonly respawnTimers = new Map<number, NodeJS.Timeout>();
  private readonly readyWaiters: Array<() => void> = [];
  /** Resolvers waiting for a worker to become ready or die. */
  private readonly settleWaiters = new Map<WorkerProc, Array<() => void>>();
  private livenessTimer: NodeJS.Timeout | null = null;
  private readonly metricsRequests: MetricsRequests<WorkerProc>;
  private stopping = false;
  private config: ResolvedConfig;
  /** Bounded-load scratch (allocated once): each slot's load, and the slots at the bound. */
  private readonly loads = new Float64Array(MAX_SLOTS);
  private readonly full = new Uint8Array(MAX_SLOTS);
  /** The fd-passing addon, when built and not turned off (workers.handoff "ipc"). */
  private readonly fdpass: FdPassBinding | null;
  /** key.reuse "forward": the directory (mode 0700) where each worker listens for links from the others. */
  private readonly links: LinkDirectory;

  constructor(
    config: ResolvedConfig,
    runtimePath: string,
    private readonly log: Logger,
    private readonly metrics: MasterMetrics,
    private readonly hooks: PoolHooks,
  ) {
    this.config = config;
    this.links = new LinkDirectory(log);
    this.metricsRequests = new MetricsRequests((proc, id, failed) =>
      this.send(proc, { type: 'metrics', id }, undefined, (error) => {
        if (error) failed();
      }),
    );
    // Batches need the worker to open what it receives as TCP handles (src/node/tcp-handle.ts); else Node's IPC.
    this.fdpass = config.workers.handoff === 'auto' && canOpenTcp() ? loadFdPass() : null;
    // JSON, Node's default, written out: bytes go as latin1 strings (see wire.ts for why not 'advanced').
    cluster.setupPrimary({ exec: runtimePath, serialization: 'json', args: [] });
    this.startLiveness();
  }

  /** Number of slots routing considers. */
  get slotCount(): number {
    return this.current.length;
  }

  /** The slots the pool aims for. */
  get targetCount(): number {
    return this.target;
  }

  /** True once `stopAll` began. */
  get isStopping(): boolean {
    return this.stopping;
  }

  /** Uses a new config for workers forked from now on (SIGHUP). */
  setConfig(config: ResolvedConfig): void {
    this.config = config;
    this.startLiveness();
  }

  /** Checks every current worker's liveness at a steady tick (half the shorter of the heartbeat and the ack timeout). */
  private startLiveness(): void {
    if (this.livenessTimer !== null) clearInterval(this.livenessTimer);
    const { heartbeatMs, ackTimeoutMs } = this.config.workers;
    this.livenessTimer = setInterval(() => this.checkLiveness(), Math.max(25, Math.floor(Math.min(heartbeatMs, ackTimeoutMs) / 2)));
    this.livenessTimer.unref();
  }

  /**
   * An unresponsive worker takes no new connections: its keys go to their
   * next slot in rendezvous order (what it already has waits for it: its
   * descriptors are in its queue, and a second process must not read the same
   * socket). When it answers again its keys come back; past killUnresponsiveMs
   * it is killed and respawned into its slot, as after a crash.
   */
  private checkLiveness(): void {
    const now = monotonicMs();
    const { unresponsiveMs, ackTimeoutMs, killUnresponsiveMs } = this.config.workers;
    for (const proc of this.current) {
      if (proc === null || proc.gone || (proc.state !== 'ready' && proc.state !== 'unresponsive')) continue;
      const verdict = proc.liveness.check(now, { silentMs: unresponsiveMs, ackTimeoutMs });
      if (verdict !== null && proc.state === 'ready') this.markUnresponsive(proc, verdict, now);
      else if (verdict === null && proc.state === 'unresponsive') this.markResponsive(proc, now);
      else if (verdict !== null && killUnresponsiveMs > 0 && now - proc.unresponsiveSince >= killUnresponsiveMs) {
        this.log.error({ worker: proc.slot, workerPid: proc.pid, unresponsiveMs: now - proc.unresponsiveSince }, 'worker unresponsive too long; killing it');
        proc.worker.process.kill('SIGKILL');
        // The exit respawns it into its slot; until then nothing more is checked.
        proc.unresponsiveSince = Number.POSITIVE_INFINITY;
      }
    }
  }

  private markUnresponsive(proc: WorkerProc, reason: Unresponsive, now: number): void {
    if (!this.transition(proc, 'unresponsive')) return;
    proc.unresponsiveSince = now;
    this.readyMask[proc.slot] = takesConnections(proc.state) ? 1 : 0;
    this.metrics.unresponsive.inc({ worker: String(proc.slot), reason });
    this.log.warn({ worker: proc.slot, workerPid: proc.pid, reason, silentMs: proc.liveness.silentFor(now), unacked: proc.liveness.unacked }, 'worker unresponsive; its keys go to their next slot');
  }

  private markResponsive(proc: WorkerProc, now: number): void {
    if (!this.transition(proc, 'ready')) return;
    this.readyMask[proc.slot] = takesConnections(proc.state) ? 1 : 0;
    this.log.info({ worker: proc.slot, workerPid: proc.pid, unresponsiveMs: now - proc.unresponsiveSince }, 'worker responsive again; its keys come back');
  }

  /** A worker acknowledged a hand-off. */
  private onAck(proc: WorkerProc, id: number): void {
    proc.liveness.answeredOne();
    proc.liveness.heard(monotonicMs());
    this.hooks.onAck(proc, id);
  }

  /**
   * Where a key goes now (src/shared/placement.ts): `pinned` (a sticky
   * cookie's slot) when it is ready, else its first choice among ready slots
   * not in `exclude` (slots a connection was already sent to) and, with
   * `balanceFactor`, not at the load bound.
   */
  choose(keyHash: number, exclude: readonly number[] = NO_SLOTS, pinned = -1): SlotChoice {
    return placeKey(keyHash, this.placementView(), exclude, pinned);
  }

  /** What placement reads now: the slots, the ready ones and (with `balanceFactor`) the ones at the load bound. */
  placementView(): PlacementView {
    const slotCount = this.current.length;
    const factor = this.config.balanceFactor;
    if (factor === undefined) return { slotCount, ready: this.readyMask };
    for (let slot = 0; slot < slotCount; slot++) {
      const proc = this.current[slot];
      this.loads[slot] = proc ? proc.active + Math.max(0, proc.sent - proc.received) : 0;
    }
    return { slotCount, ready: this.readyMask, full: fullSlots(slotCount, this.readyMask, this.loads, factor, this.full) };
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

  /**
   * Resolves true when every slot up to the target has a ready worker; false
   * when the pool stops first or `timeoutMs` passes (a crash-looping slot).
   */
  whenAllReady(timeoutMs?: number): Promise<boolean> {
    if (this.allReady()) return Promise.resolve(true);
    if (this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? null : setTimeout(() => finish(false), timeoutMs);
      const finish = (ready: boolean): void => {
        if (timer) clearTimeout(timer);
        const index = this.readyWaiters.indexOf(waiter);
        if (index !== -1) this.readyWaiters.splice(index, 1);
        resolve(ready);
      };
      const waiter = (): void => finish(this.allReady());
      this.readyWaiters.push(waiter);
    });
  }

  private allReady(): boolean {
    return this.current.length === this.target && this.readyCount() === this.target;
  }

  /**
   * Scales to `count` slots. New slots are forked at the top (only the keys
   * whose new first choice they are move, once they are ready). The highest
   * slots go first: routing stops at once (their keys go to their next choice)
   * and the worker drains, bounded by `workers.drainTimeoutMs`.
   */
  scaleTo(count: number): void {
    if (this.stopping) return;
    count = Math.max(1, Math.min(MAX_SLOTS, Math.floor(count)));
    this.target = count;
    while (this.current.length < count) {
      const slot = this.current.length;
      this.current.push(null);
      this.crashes[slot] = 0;
      this.fork(slot);
    }
    while (this.current.length > count) {
      const slot = this.current.length - 1;
      const proc = this.current[slot] ?? null;
      this.cancelRespawn(slot);
      this.readyMask[slot] = 0;
      this.current.pop();
      this.metrics.active.remove({ worker: String(slot) });
      if (proc) this.retire(proc);
    }
    this.updateGauges();
    this.settleReadyWaiters();
  }

  /** How connections reach the workers forked from now on. */
  get handoffMode(): 'fd-channel' | 'ipc' {
    return this.fdpass === null ? 'ipc' : 'fd-channel';
  }

  /** Hands a client connection to a worker (src/master/transport/worker-channel.ts); `done` gets an error when it did not reach it. */
  sendConnection(proc: WorkerProc, id: number, bytes: Buffer, info: ConnectionInfo, handle: object, fd: number, done: (error: Error | null) => void): void {
    sendConnection(proc, id, bytes, info, handle, fd, done);
  }

  /** Sends a message (and a socket) to a worker; `done` gets the send error, if any. */
  send(proc: WorkerProc, message: MasterMessage, socket: object | undefined, done: (error: Error | null) => void): void {
    sendMessage(proc, message, socket, done);
  }

  /**
   * Replaces every worker, one slot at a time: the new worker (forked with the
   * current config) becomes ready and takes the slot before the old one drains,
   * so the slot never stops taking connections. Stops at the first replacement
   * that fails to start (a broken app must not take down every slot).
   */
  async rollingRestart(): Promise<{ replaced: number; failedSlot: number | null }> {
    let replaced = 0;
    for (let slot = 0; slot < this.current.length && !this.stopping; slot++) {
      const old = this.current[slot];
      // An unresponsive worker is replaced too (the new one takes its slot; it drains, bounded, or is killed).
      if (!old || (old.state !== 'ready' && old.state !== 'unresponsive')) continue;
      const next = this.fork(slot, old);
      await this.settled(next);
      if (next.state !== 'ready' && next.state !== 'draining') {
        if (this.stopping) break;
        this.log.error({ worker: slot, workerPid: next.pid }, 'rolling restart: the new worker did not start; keeping the old ones');
        return { replaced, failedSlot: slot };
      }
      replaced++;
    }
    return { replaced, failedSlot: null };
  }

  /**
   * Asks every ready or draining worker for its prom-client registry as JSON
   * (src/master/supervisor/metrics-requests.ts); resolves with what arrived within the timeout.
   */
  collectWorkerMetrics(timeoutMs = WORKER_METRICS_TIMEOUT_MS): Promise<unknown[][]> {
    const procs = [...this.current, ...this.retiring].filter(
      (proc): proc is WorkerProc => proc !== null && !proc.gone && (proc.state === 'ready' || proc.state === 'draining'),
    );
    return this.metricsRequests.ask(procs, timeoutMs);
  }

  /** Drains every worker (bounded by the drain timeout) and resolves when all have exited. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    if (this.livenessTimer !== null) clearInterval(this.livenessTimer);
    for (const timer of this.respawnTimers.values()) clearTimeout(timer);
    this.respawnTimers.clear();
    for (let slot = 0; slot < this.current.length; slot++) {
      const proc = this.current[slot];
      this.readyMask[slot] = 0;
      if (proc) this.retire(proc);
    }
    for (const proc of this.replacements) this.retire(proc);
    this.current.length = 0;
    this.updateGauges();
    for (const resolve of this.readyWaiters.splice(0)) resolve();
    await Promise.all([...this.retiring].map((proc) => this.exited(proc)));
    this.links.remove();
  }

  /** Forks a worker into `slot`. With `replacing`, the old one serves until the new one is ready. */
  private fork(slot: number, replacing?: WorkerProc): WorkerProc {
    const linkDir = reuseMode(this.config.key) === 'forward' && this.config.tls === undefined ? this.links.path() : null;
    const proc = forkWorker(slot, this.config, linkDir, this.fdpass, {
      onAck: (id) => this.onAck(proc, id),
      onHandbackHandle: (entry, handle) => {
        proc.liveness.heard(monotonicMs());
        this.hooks.onHandbackHandle(proc, entry, handle);
      },
      onChannelError: (error) => this.log.error({ worker: slot, workerPid: proc.pid, err: error.message }, 'fd channel error'),
    });
    const worker = proc.worker;
    if (replacing) this.replacements.add(proc);
    else this.current[slot] = proc;
    worker.on('message', (message: unknown, handle: unknown) => this.onMessage(proc, message, handle as Socket | undefined, replacing));
    // 'disconnect' can come before 'exit' (the channel closes as the process dies):
    // stop routing and re-route at the first of the two.
    worker.on('disconnect', () => {
      this.onGone(proc);
      // The channel is read to its end by now, so a 'failed' message has arrived if one was sent.
      if (proc.goneStarting) this.hooks.onStartFailed?.(proc);
    });
    worker.on('exit', (code, signal) => this.onExit(proc, code, (signal || null) as NodeJS.Signals | null));
    // An IPC error (EPIPE to a dying worker) must not become an uncaught exception.
    worker.on('error', (error) => this.log.warn({ worker: slot, workerPid: proc.pid, err: error.message }, 'worker channel error'));
    this.log.info({ worker: slot, workerPid: proc.pid, replacing: replacing?.pid }, 'worker starting');
    this.updateGauges();
    return proc;
  }

  /** Moves a worker to `to` if the state machine allows it (slot-state.ts). */
  private transition(proc: WorkerProc, to: SlotState): boolean {
    if (!canTransition(proc.state, to)) {
      this.log.debug({ worker: proc.slot, workerPid: proc.pid, from: proc.state, to }, 'state transition ignored');
      return false;
    }
    proc.state = to;
    if (to === 'ready' || to === 'dead' || to === 'draining') this.wakeSettled(proc);
    this.updateGauges();
    return true;
  }

  private onMessage(proc: WorkerProc, message: unknown, handle: Socket | undefined, replacing?: WorkerProc): void {
    if (!isMessage<WorkerMessage>(message)) return;
    proc.liveness.heard(monotonicMs());
    switch (message.type) {
      case 'ready':
        proc.fdChannelReady = message.fdChannel === true && proc.handoff !== null;
        this.onReady(proc, replacing);
        return;
      case 'ack':
        this.onAck(proc, message.id);
        return;
      case 'heartbeat':
        return;
      case 'boot':
        if (proc.start !== null) this.send(proc, proc.start, undefined, () => {});
        proc.start = null;
        return;
      case 'failed':
        if (typeof message.error === 'string') proc.failure = message.error;
        return;
      case 'active':
        proc.active = message.count;
        if (message.received !== undefined) proc.received = message.received;
        if (this.current[proc.slot] === proc) this.metrics.active.set({ worker: String(proc.slot) }, message.count);
        if (Array.isArray(message.closedClients) && message.closedClients.length > 0) this.hooks.onClientsClosed?.(proc, message.closedClients.filter((client): client is string => typeof client === 'string'));
        return;
      case 'handback':
        this.hooks.onHandback(proc, message, handle);
        return;
      case 'peer':
        if (typeof message.peer === 'string') this.hooks.onPeerReport?.(message.peer, message.outcome);
        return;
      case 'metrics': {
        this.metricsRequests.answered(message.id, proc, message.metrics);
        return;
      }
    }
  }

  private onReady(proc: WorkerProc, replacing: WorkerProc | undefined): void {
    if (proc.state !== 'starting') return;
    if (replacing) {
      this.replacements.delete(proc);
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
    this.readyMask[proc.slot] = takesConnections(proc.state) ? 1 : 0;
    this.metrics.active.set({ worker: String(proc.slot) }, proc.active);
    this.log.info({ worker: proc.slot, workerPid: proc.pid, fdChannel: proc.fdChannelReady }, 'worker ready');
    this.settleReadyWaiters();
  }

  /** Stops routing to a worker and asks it to finish its connections, bounded by the drain timeout. */
  private retire(proc: WorkerProc): void {
    if (proc.state === 'dead' || this.retiring.has(proc)) return;
    // Still loading its app, it does not read drain messages yet, and has no connection to finish.
    if (proc.state === 'starting') proc.worker.process.kill('SIGTERM');
    this.replacements.delete(proc);
    this.retiring.add(proc);
    this.transition(proc, 'draining');
    const timeoutMs = this.config.workers.drainTimeoutMs;
    this.log.info({ worker: proc.slot, workerPid: proc.pid, timeoutMs }, 'worker draining');
    this.send(proc, { type: 'drain', timeoutMs }, undefined, () => {});
    // The worker exits by itself when drained (or at its own timeout); this is the bound if it does not.
    const killTimer = setTimeout(() => {
      if (proc.state !== 'dead') {
        this.log.warn({ worker: proc.slot, workerPid: proc.pid }, 'worker did not exit after draining; killing it');
        proc.worker.process.kill('SIGKILL');
      }
    }, timeoutMs + DRAIN_KILL_GRACE_MS);
    killTimer.unref();
    void this.exited(proc).then(() => clearTimeout(killTimer));
  }

  /** The worker's channel is gone: route nothing more to it, re-route what it had not acknowledged. */
  private onGone(proc: WorkerProc): void {
    if (proc.gone) return;
    proc.gone = true;
    proc.goneStarting = proc.state === 'starting';
    proc.handoff?.close();
    // A metrics request need not wait for a worker that cannot answer.
    this.metricsRequests.gone(proc);
    if (this.current[proc.slot] === proc) this.readyMask[proc.slot] = 0;
    this.hooks.onExit(proc);
  }

  private onExit(proc: WorkerProc, code: number | null, signal: NodeJS.Signals | null): void {
    this.onGone(proc);
    const planned = proc.state === 'draining';
    this.transition(proc, 'dead');
    this.retiring.delete(proc);
    this.replacements.delete(proc);
    const isCurrent = this.current[proc.slot] === proc;
    if (isCurrent) {
      this.readyMask[proc.slot] = 0;
      this.current[proc.slot] = null;
      this.metrics.active.set({ worker: String(proc.slot) }, 0);
    }
    this.updateGauges();
    this.wakeSettled(proc);
    if (planned || !isCurrent || this.stopping) {
      this.log.info({ worker: proc.slot, workerPid: proc.pid, code, signal }, 'worker stopped');
      return;
    }
    // An unplanned exit: respawn into the same slot (its keys come back when it
    // is ready), backing off while it crash-loops.
    const uptime = Date.now() - proc.startedAt;
    const crashes = uptime >= HEALTHY_UPTIME_MS ? 1 : (this.crashes[proc.slot] ?? 0) + 1;
    this.crashes[proc.slot] = crashes;
    const delayMs = respawnDelayMs(crashes);
    this.log.warn({ worker: proc.slot, workerPid: proc.pid, code, signal, delayMs, crashes }, 'worker exited; respawning');
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

  /** Resolves when `proc` is ready, draining or dead. */
  private settled(proc: WorkerProc): Promise<void> {
    if (proc.state !== 'starting') return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.settleWaiters.get(proc) ?? [];
      list.push(resolve);
      this.settleWaiters.set(proc, list);
    });
  }

  /** Resolves when `proc` has exited. */
  private exited(proc: WorkerProc): Promise<void> {
    if (proc.state === 'dead') return Promise.resolve();
    return new Promise((resolve) => proc.worker.once('exit', () => resolve()));
  }

  private wakeSettled(proc: WorkerProc): void {
    const list = this.settleWaiters.get(proc);
    if (!list) return;
    this.settleWaiters.delete(proc);
    for (const resolve of list) resolve();
  }

  private settleReadyWaiters(): void {
    if (!this.allReady()) return;
    for (const resolve of this.readyWaiters.splice(0)) resolve();
  }

  private updateGauges(): void {
    const counts: Record<SlotState, number> = { empty: 0, starting: 0, ready: 0, unresponsive: 0, draining: 0, dead: 0 };
    for (const proc of this.current) counts[proc ? proc.state : 'empty']++;
    for (const proc of this.retiring) counts[proc.state]++;
    for (const proc of this.replacements) counts[proc.state]++;
    for (const [state, count] of Object.entries(counts)) this.metrics.workers.set({ state }, count);
  }
}

const NO_SLOTS: readonly number[] = [];

