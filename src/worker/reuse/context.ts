import type net from 'node:net';
import type { ConnectionInfo } from '../../shared/connection-info.js';
import type { KeyRules } from '../../shared/key/derive.js';
import type { StickyCookieRules } from '../../shared/key/sticky-cookie.js';
import type { HandbackKey } from '../../shared/wire/fd-batch.js';

/** What the reuse code needs from the runtime. */
export interface ReuseContext {
  readonly slot: number;
  readonly rules: KeyRules;
  readonly stickyCookie: StickyCookieRules | undefined;
  /** The largest request head framed (bigger ones go to the app's server, which answers 431). */
  readonly maxHeadBytes: number;
  /** A partial head waiting longer than this closes the connection (as the master's peek does). */
  readonly headTimeoutMs: number;
  /** The app's server (fed with the {@link StandInSocket}). */
  readonly server: () => net.Server;
  /**
   * Hands the connection to the master with the bytes it has not served and
   * where its next request belongs; `done` once it is on its way (or failed).
   */
  readonly handBack: (socket: net.Socket, bytes: Buffer, info: ConnectionInfo, next: HandbackKey, done: (error: Error | null) => void) => void;
}
