import type { ConnectionInfo } from '../../shared/connection-info.js';
import { bytesToWire, infoToWire } from '../../shared/wire/connection.js';
import type { MasterMessage } from '../../shared/wire/ipc.js';
import type { Worker } from 'node:cluster';
import type { HandoffSender } from './handoff-sender.js';

/**
 * The master's two ways to a worker. A connection goes on the worker's fd
 * channel when it has one (batched with the others decided in this turn of
 * the event loop, src/master/transport/handoff-sender.ts), else on Node's IPC
 * channel with the handle. Every other message goes on IPC.
 */

/** What the transport reads and counts of a worker (the supervisor's WorkerProc is one). */
export interface WorkerEnd {
  readonly worker: Pick<Worker, 'isConnected' | 'send'>;
  /** The channel is gone (disconnect or exit seen). */
  readonly gone: boolean;
  readonly handoff: HandoffSender | null;
  /** The worker said it reads its fd channel. */
  readonly fdChannelReady: boolean;
  /** Connections sent (bounded load counts those not yet received). */
  sent: number;
  readonly liveness: { deliveredSome(count: number): void };
}

/**
 * Hands a client connection to `proc`. `fd` is the connection's descriptor
 * (-1 when unknown: IPC). The master keeps its copy until the worker's ack;
 * `done` gets an error when the connection did not reach the worker (re-route it).
 */
export function sendConnection(proc: WorkerEnd, id: number, bytes: Buffer, info: ConnectionInfo, handle: object, fd: number, done: (error: Error | null) => void): void {
  const handoff = proc.handoff;
  if (handoff !== null && proc.fdChannelReady && !proc.gone) {
    proc.sent++;
    const queued = handoff.enqueue(id, fd, bytes, info, (error) => {
      if (error) proc.sent--;
      done(error);
    });
    if (queued) return;
    proc.sent--;
  }
  sendMessage(proc, { type: 'connection', id, bytes: bytesToWire(bytes), info: infoToWire(info) }, handle, done);
}

/** Sends a message (and a socket) to `proc` on IPC; `done` gets the send error, if any. */
export function sendMessage(proc: WorkerEnd, message: MasterMessage, socket: object | undefined, done: (error: Error | null) => void): void {
  if (proc.gone || !proc.worker.isConnected()) {
    done(new Error('worker channel closed'));
    return;
  }
  // Connections batched for the fd channel go first (e.g. before a 'drain').
  proc.handoff?.flush();
  const isConnection = message.type === 'connection';
  if (isConnection) proc.sent++;
  try {
    // keepOpen: the master keeps its copy of the handle until the worker's
    // own 'ack', so a worker dying mid-transfer cannot lose the connection.
    proc.worker.send(message, socket as never, { keepOpen: true }, (error) => {
      if (error && isConnection) proc.sent--;
      else if (isConnection) proc.liveness.deliveredSome(1);
      done(error ?? null);
    });
  } catch (error) {
    if (isConnection) proc.sent--;
    done(error as Error);
  }
}
