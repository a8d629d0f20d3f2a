import type { ResolvedConfig } from '../config/load.js';
import type { ConnectionInfo } from '../connection-info.js';
import type { WireBytes, WireConnectionInfo } from './connection.js';

/**
 * The IPC protocol between the master and its workers: one discriminated union
 * per direction, on the `type` field. JSON on the channel; bytes travel as
 * latin1 strings (src/shared/wire/connection.ts says why and how).
 */

/** Master → worker. */
export type MasterMessage =
  /**
   * The first message to a new worker: its config (over IPC, never in the
   * environment), its slot, its fd channel's descriptor and the links'
   * directory (key.reuse "forward"), when there are.
   */
  | { readonly type: 'start'; readonly config: ResolvedConfig; readonly slot: number; readonly fdChannel: number | null; readonly linkDir: string | null }
  /** A client connection (the socket handle rides along) plus every byte the master read. */
  | { readonly type: 'connection'; readonly id: number; readonly bytes: WireBytes; readonly info: WireConnectionInfo }
  /** Stop taking connections, finish the open ones within `timeoutMs`, then exit. */
  | { readonly type: 'drain'; readonly timeoutMs: number }
  /** Re-read TLS material and swap the secure context (SIGHUP). */
  | { readonly type: 'reload-tls' }
  /** Send your prom-client registry as JSON (answered by a `metrics` message with the same id). */
  | { readonly type: 'metrics'; readonly id: number }
  /**
   * The slots routing considers and which are ready (`ready[slot]` 1 or 0), sent
   * when they change (key.reuse "handback"): a worker compares each request's
   * key with it to know whether the request is its own.
   */
  | { readonly type: 'pool-view'; readonly slotCount: number; readonly ready: readonly number[]; readonly pids?: readonly number[]; readonly full?: readonly number[] };

/** Worker → master. */
/** What a worker's forward to another node found: it connected, or why it could not. */
export type PeerOutcome = 'connected' | 'refused' | 'timeout' | 'error';

export type WorkerMessage =
  /** The worker's entry module is listening for messages: send the start message. */
  | { readonly type: 'boot' }
  /** The app could not be loaded (`error`: its stack); the worker exits 1 next. */
  | { readonly type: 'failed'; readonly error: string }
  /** The app is loaded; send connections (on the fd channel when `fdChannel` is true). */
  | { readonly type: 'ready'; readonly fdChannel?: boolean }
  /** Sent every workers.heartbeatMs: the worker's event loop turns (any message counts the same). */
  | { readonly type: 'heartbeat' }
  /** Connection `id` is now the worker's (the master may close its copy of the handle). Connections on the fd channel are acknowledged there. */
  | { readonly type: 'ack'; readonly id: number }
  /**
   * The worker's count of open client connections changed. `received` is every
   * connection it has been handed so far: the master subtracts it from what it
   * sent to know the hand-offs this count does not include yet (bounded load).
   * `closedClients`: the limitClient of each counted connection closed since the last report.
   */
  | { readonly type: 'active'; readonly count: number; readonly received?: number; readonly closedClients?: readonly string[] }
  /** Answer to the master's `metrics` request: `registry.getMetricsAsJSON()`, for AggregatorRegistry.aggregate. */
  | { readonly type: 'metrics'; readonly id: number; readonly metrics: readonly unknown[] }
  /** With many nodes: a forward to `peer` failed, or (`connected`) reached a peer the master held as unreachable. */
  | { readonly type: 'peer'; readonly peer: string; readonly outcome: PeerOutcome }
  /** A connection handed back for re-routing (key.reuse "handback"): the handle rides along. */
  | {
      readonly type: 'handback';
      readonly id: number;
      readonly bytes: WireBytes;
      readonly info: WireConnectionInfo;
      readonly key: string;
      readonly keySource: ConnectionInfo['keySource'];
      /** The slot a valid sticky cookie on the next request names, if any (the master sends it there while it is ready). */
      readonly stickySlot?: number;
    };

/**
 * Recognises one of our messages, either way (IPC data is untrusted input in
 * shape): an object with a string `type`. Each side's handler table then
 * ignores the types it does not know.
 */
export function isMessage<M extends MasterMessage | WorkerMessage>(value: unknown): value is M {
  return value !== null && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string';
}
