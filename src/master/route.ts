import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ConnectionInfo } from '../shared/connection-info.js';
import { hashKey } from '../shared/ring/farmhash.js';
import type { BatchEntry, HandbackKey } from '../shared/wire/fd-batch.js';
import type { WorkerMessage } from '../shared/wire/ipc.js';
import { bytesFromWire, infoFromWire } from '../shared/wire/connection.js';
import { stopSocketReads } from '../node/socket.js';
import type { MasterMetrics } from './admin/metrics.js';
import type { ClientLimits } from './client-limits.js';
import { rawConn, socketConn, type ClientConn } from './client-conn.js';
import type { Refuser } from './refuse.js';
import type { WorkerPool } from './supervisor/pool.js';
import type { WorkerProc } from './supervisor/worker-proc.js';

/** How often a connection that found no ready worker looks again (bounded by peekTimeoutMs). */
const NO_WORKER_RETRY_MS = 25;

/** A decided connection on its way to a worker. */
export interface Handoff {
  readonly conn: ClientConn;
  /** What the worker replays in front of the socket: the bytes read from the first request on. */
  readonly bytes: Buffer;
  readonly info: ConnectionInfo;
  readonly keyHash: number;
  readonly acceptedAt: bigint;
  /** The client address for log lines. */
  readonly peer: string;
  /** The slot a valid sticky cookie names (used while it is ready and not tried). */
  readonly pinned?: number;
  /** The slot that handed this connection back (key.reuse "handback"). */
  readonly handedBackBy?: number;
  /** The client address its open-connection count is kept under (limits.perClient.maxConnections). */
  readonly limitClient?: string;
}

/** A connection the router holds, with the slots it was already sent to (re-routes skip them). */
interface Held {
  readonly handoff: Handoff;
  readonly tried: number[];
}

/** A hand-off sent to a worker and not yet acknowledged. */
interface InFlight {
  readonly held: Held;
  readonly proc: WorkerProc;
}

/**
 * Route → send → ack for every decided connection, and the connections
 * workers hand back. The master keeps its copy of a descriptor until the worker
 * acknowledges it; a failed send or a worker that goes away re-routes it to the
 * key's next choice with the same bytes. Every connection enters through
 * {@link take} and leaves through `release`, so {@link holding} cannot drift.
 */
export class Router {
  private readonly inFlight = new Map<number, InFlight>();
  private nextId = 1;
  private count = 0;

  constructor(
    private readonly pool: WorkerPool,
    private readonly metrics: MasterMetrics,
    private readonly log: Logger,
    private readonly refuser: Refuser,
    private readonly clientLimits: ClientLimits | null,
    private readonly noWorkerWaitMs: () => number,
    /** Called before every placement (the pool view the workers place with must be current). */
    private readonly beforePlacement: () => void,
  ) {}

  /** Connections held: waiting for a ready worker or in flight to one. */
  get holding(): number {
    return this.count;
  }

  /** Connections sent to a worker and not yet acknowledged. */
  get unacknowledged(): number {
    return this.inFlight.size;
  }

  /** Takes a decided connection: it goes to the best eligible worker, or waits briefly if none is ready. */
  take(handoff: Handoff): void {
    this.count++;
    this.route({ handoff, tried: [] }, null, Date.now());
  }

  /** The connection leaves the router: acknowledged, refused or gone (`openCount`: its client's open count goes too). */
  private release(handoff: Handoff, openCount: boolean): void {
    this.count--;
    if (openCount && handoff.limitClient !== undefined) this.clientLimits?.release(handoff.limitClient);
  }

  private route(held: Held, fallbackReason: string | null, firstTry: number): void {
    const { handoff, tried } = held;
    if (handoff.conn.closed) {
      this.release(handoff, true);
      return;
    }
    this.beforePlacement();
    const choice = this.pool.choose(handoff.keyHash, tried, handoff.pinned);
    fallbackReason ??= choice.fallback;
    if (choice.slot === -1) {
      if (Date.now() - firstTry >= this.noWorkerWaitMs()) {
        this.release(handoff, true);
        this.refuser.refuse(handoff.conn, handoff.peer, 'ERR_NO_WORKER');
        return;
      }
      // Every slot it was sent to is gone: a respawned worker in one of them may take it.
      tried.length = 0;
      setTimeout(() => this.route(held, fallbackReason ?? 'no-ready-worker', firstTry), NO_WORKER_RETRY_MS);
      return;
    }
    const proc = this.pool.worker(choice.slot) as WorkerProc;
    const id = this.nextId++;
    const info: ConnectionInfo = { ...handoff.info, worker: choice.slot };
    tried.push(choice.slot);
    this.inFlight.set(id, { held, proc });
    if (fallbackReason !== null) this.metrics.fallbacks.inc({ reason: fallbackReason });
    this.pool.sendConnection(proc, id, handoff.bytes, info, handoff.conn.sendable, handoff.conn.fd, (error) => {
      if (error) this.reroute(id, 'send-failed');
    });
  }

  private reroute(id: number, reason: string): void {
    const sent = this.inFlight.get(id);
    if (!sent) return;
    this.inFlight.delete(id);
    this.log.warn({ client: sent.held.handoff.peer, worker: sent.proc.slot, reason }, 'hand-off failed; re-routing');
    this.route(sent.held, reason, Date.now());
  }

  /** A worker took connection `id`: the master's copy of the handle can go. */
  onAck(proc: WorkerProc, id: number): void {
    const sent = this.inFlight.get(id);
    if (!sent || sent.proc !== proc) return;
    this.inFlight.delete(id);
    const { handoff } = sent.held;
    this.release(handoff, false);
    // Closing our duplicate of the descriptor; the worker holds its own.
    handoff.conn.close();
    if (handoff.limitClient !== undefined) this.clientLimits?.heldBy(proc, handoff.limitClient);
    this.metrics.handoffs.inc({ worker: String(proc.slot), key_source: handoff.info.keySource });
    if (handoff.handedBackBy !== undefined && handoff.handedBackBy !== proc.slot) this.metrics.reroutedRequests.inc();
    this.metrics.handoffSeconds.observe(Number(process.hrtime.bigint() - handoff.acceptedAt) / 1e9);
  }

  /** A worker is gone: whatever it had not acknowledged goes to the next choice. */
  onExit(proc: WorkerProc): void {
    for (const [id, sent] of this.inFlight) if (sent.proc === proc) this.reroute(id, 'worker-exit');
    this.clientLimits?.workerGone(proc);
  }

  /**
   * A worker handed a connection back over Node's IPC (key.reuse "handback"):
   * its next request belongs to another worker.
   */
  onHandback(proc: WorkerProc, message: Extract<WorkerMessage, { type: 'handback' }>, socket: Socket | undefined): void {
    // The client can be gone while the handle was in flight.
    if (!socket) return;
    socket.on('error', ignoreError);
    // A socket built from a received handle starts reading at once (net.Socket
    // calls read(0)); the 'message' event comes on the next tick, before any
    // I/O, so nothing has been read yet. Stop now, as for a new connection.
    stopSocketReads(socket, ignoreError);
    this.takeHandback(proc, socketConn(socket), bytesFromWire(message.bytes), infoFromWire(message.info), message);
  }

  /** A connection handed back on a worker's fd channel: a raw TCP handle that is not reading. */
  onHandbackHandle(proc: WorkerProc, entry: BatchEntry & { readonly handback: HandbackKey }, handle: object): void {
    this.takeHandback(proc, rawConn(handle), entry.bytes, entry.info, entry.handback);
  }

  /**
   * Routed like a new connection, by the key the worker derived with the same
   * code and the slot of a valid sticky cookie; the master reads nothing again.
   * `bytes` are the ones the worker had read and not served, from the start of
   * that request.
   */
  private takeHandback(proc: WorkerProc, conn: ClientConn, bytes: Buffer, wireInfo: ConnectionInfo, next: HandbackKey): void {
    this.metrics.handbacks.inc();
    // firstClient was the first request's client; the request that moved the connection may be another's.
    const { firstClient: _first, ...moved } = wireInfo;
    const info: ConnectionInfo = { ...moved, key: next.key, keySource: next.keySource, worker: -1 };
    const pinned = next.stickySlot;
    // Still one connection of its client: counted again for the worker that takes it (the one handing it back releases its count).
    const limitClient = this.clientLimits?.countsOpen === true ? wireInfo.limitClient : undefined;
    if (limitClient !== undefined) this.clientLimits?.reacquire(limitClient, Date.now());
    this.take({
      conn,
      bytes,
      info,
      keyHash: hashKey(next.key),
      acceptedAt: process.hrtime.bigint(),
      peer: info.proxy?.source?.address ?? info.peer ?? '',
      handedBackBy: proc.slot,
      ...(typeof pinned === 'number' ? { pinned } : {}),
      ...(limitClient === undefined ? {} : { limitClient }),
    });
  }
}

function ignoreError(): void {
  // Client resets are normal; the 'close' that follows does the bookkeeping.
}
