import type net from 'node:net';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../shared/config/load.js';
import type { ConnectionInfo } from '../shared/connection-info.js';
import { reuseMode, type ReuseMode } from '../shared/key/reuse.js';
import { edgeHooks } from './inspect.js';
import { LinkPool } from './link/front.js';
import type { RequestHook, UpgradeHook } from './request-hooks.js';
import { requestLimitHook } from './request-limits.js';
import type { ReuseContext } from './reuse/context.js';
import { forwardHooks } from './reuse/forward.js';
import { reuseHooks } from './reuse/strategies.js';
import { stickyCookieHook } from './sticky-cookie.js';

/**
 * Takes over a connection before the app's server sees it (e.g. per-request
 * re-routing on reused connections). Returns true when it took the socket.
 */
export type ConnectionHook = (socket: net.Socket, bytes: Buffer, info: ConnectionInfo) => boolean;

/** What this worker runs in front of the app, in order. */
export interface WorkerHooks {
  readonly requestHooks: RequestHook[];
  readonly connectionHooks: ConnectionHook[];
  readonly upgradeHooks: UpgradeHook[];
  /** key.reuse "forward": this worker's links to the others, or null. */
  readonly linkPool: LinkPool | null;
}

/** What the runtime can do on this Node and was given by the master. */
export interface WorkerAbilities {
  readonly log: Logger;
  /** key.reuse "forward": the master's directory for links, or null. */
  readonly linkDir: string | null;
  /** A socket's reads can be stopped at once (src/node/socket.ts): needed to hand a connection back. */
  readonly socketReadsStop: boolean;
  /** Another worker's response can be written in a ServerResponse's place (src/node/outgoing.ts): needed to relay. */
  readonly responseRelay: boolean;
}

/**
 * The reuse mode this Node can carry out: a relay needs Node's ServerResponse
 * internals, a hand-back needs a socket's reads stopped at once; without them
 * the next safe mode serves.
 */
export function reuseModeInEffect(mode: ReuseMode, abilities: Pick<WorkerAbilities, 'socketReadsStop' | 'responseRelay'>): ReuseMode {
  if ((mode === 'forward' || mode === 'handback') && !abilities.socketReadsStop) return 'close';
  if (mode === 'forward' && !abilities.responseRelay) return 'handback';
  return mode;
}

/**
 * The hooks a config asks for; an absent section adds none. Order matters:
 * "forward" first (the worker that serves a request is the one that inspects,
 * logs and cookies it), then the access log and inspection, then
 * requestsPerSecond (a limited request is logged, an inspected-away one is not
 * counted), then the sticky cookie, then the other reuse modes. Under TLS the
 * runtime cannot frame the encrypted bytes itself, so "handback" and
 * "forward" act as "close" there.
 */
export function assembleHooks(config: ResolvedConfig, reuse: ReuseContext, abilities: WorkerAbilities): WorkerHooks {
  const requestHooks: RequestHook[] = [...edgeHooks(config, abilities.log)];
  const limitHook = requestLimitHook(config, abilities.log);
  if (limitHook !== null) requestHooks.push(limitHook);
  const connectionHooks: ConnectionHook[] = [];
  const upgradeHooks: UpgradeHook[] = [];
  if (config.stickyCookie) requestHooks.push(stickyCookieHook(config.stickyCookie, reuse.slot, config.tls !== undefined));
  const mode = reuseModeInEffect(reuseMode(config.key), abilities);
  const linkPool = mode === 'forward' && abilities.linkDir !== null && !config.tls ? new LinkPool(abilities.linkDir) : null;
  if (linkPool !== null) {
    const forward = forwardHooks({ ...reuse, links: linkPool });
    requestHooks.unshift(forward.request);
    upgradeHooks.push(forward.upgrade);
  } else if (mode !== 'off' || config.key.reuse === 'off') {
    // "off" installs nothing unless set explicitly, and then only counts what it misroutes.
    // "forward" without links (no directory from the master) hands back.
    const fallback = mode === 'forward' ? 'handback' : mode;
    const hooks = reuseHooks(config.tls && fallback === 'handback' ? 'close' : fallback, reuse);
    if (hooks.connection) connectionHooks.push(hooks.connection);
    if (hooks.request) requestHooks.push(hooks.request);
  }
  return { requestHooks, connectionHooks, upgradeHooks, linkPool };
}
