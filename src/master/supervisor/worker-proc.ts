import cluster, { type Worker } from 'node:cluster';
import type { ResolvedConfig } from '../../shared/config/load.js';
import type { FdPassBinding } from '../../shared/wire/fd-channel.js';
import type { BatchEntry, HandbackKey } from '../../shared/wire/fd-batch.js';
import type { MasterMessage } from '../../shared/wire/ipc.js';
import { HandoffSender } from '../transport/handoff-sender.js';
import { Liveness } from './liveness.js';
import type { SlotState } from './slot-state.js';

/** A worker process living in a slot. */
export interface WorkerProc {
  readonly slot: number;
  readonly worker: Worker;
  readonly pid: number;
  state: SlotState;
  /** Open client connections, as the worker last reported. */
  active: number;
  /** Connections the master has sent to this worker (bounded load). */
  sent: number;
  /** Connections the worker said it had received when it last reported `active`. */
  received: number;
  /** The IPC channel is gone (disconnect or exit seen): nothing more can be sent. */
  gone: boolean;
  /**
   * The worker's fd channel (batched descriptor passing), or null: Node's IPC.
   * Used once the worker's 'ready' says it holds the other end.
   */
  handoff: HandoffSender | null;
  /** The worker said it reads its fd channel. */
  fdChannelReady: boolean;
  readonly startedAt: number;
  /** What the worker said when its app failed to load (the error's stack), if it did. */
  failure: string | null;
  /** It went away while still starting (set when its channel or process is first seen gone). */
  goneStarting: boolean;
  /** Its start message, sent once it asks (null after). */
  start: Extract<MasterMessage, { type: 'start' }> | null;
  /** What the master hears from it (heartbeats, acks), for unresponsive workers. */
  readonly liveness: Liveness;
  /** When it became unresponsive (monotonic ms), while it is. */
  unresponsiveSince: number;
}

/** A clock for liveness that wall-clock changes do not move. */
export function monotonicMs(): number {
  return performance.now();
}

/** The worker's descriptor for its end of the fd channel (stdio 0-2, the IPC channel at 3). */
const WORKER_FD_CHANNEL = 4;

/** What the fd channel of a new worker reports (with the addon only). */
export interface ChannelEvents {
  onAck(id: number): void;
  onHandbackHandle(entry: BatchEntry & { readonly handback: HandbackKey }, handle: object): void;
  onChannelError(error: Error): void;
}

/**
 * Forks the worker for `slot`: with the addon, a socket pair whose worker end
 * becomes the worker's descriptor 4 and whose master end gets a HandoffSender;
 * the start message waits in `start` until the worker asks for it.
 */
export function forkWorker(slot: number, config: ResolvedConfig, linkDir: string | null, fdpass: FdPassBinding | null, events: ChannelEvents): WorkerProc {
  const pair = fdpass?.socketpair() ?? null;
  if (pair !== null) cluster.setupPrimary({ stdio: ['inherit', 'inherit', 'inherit', 'ipc', pair[1]] });
  let worker: Worker;
  try {
    // Only the slot in the environment (apps may read it); the config, with its secrets, goes over IPC.
    worker = cluster.fork({ STICKY_SLOT: String(slot) });
  } finally {
    if (pair !== null) {
      // The child has its copy; ours would keep the channel open after the worker died.
      fdpass?.close(pair[1]);
      cluster.setupPrimary({ stdio: undefined as never });
    }
  }
  const proc: WorkerProc = {
    slot,
    worker,
    pid: worker.process.pid ?? 0,
    state: 'starting',
    active: 0,
    sent: 0,
    received: 0,
    gone: false,
    handoff: null,
    fdChannelReady: false,
    startedAt: Date.now(),
    failure: null,
    goneStarting: false,
    // Sent when the worker asks (a 'boot' message): before its entry module ran, a message would find no listener
    // (preloaded modules, --import hooks or a coverage tool run first, with the event loop turning).
    start: { type: 'start', config, slot, fdChannel: pair === null ? null : WORKER_FD_CHANNEL, linkDir },
    liveness: new Liveness(monotonicMs()),
    unresponsiveSince: 0,
  };
  if (pair !== null && fdpass !== null) {
    proc.handoff = new HandoffSender(fdpass, pair[0], events.onAck, events.onHandbackHandle, events.onChannelError, {
      delivered: (count) => proc.liveness.deliveredSome(count),
      refused: () => proc.liveness.answeredOne(),
    });
  }
  return proc;
}
