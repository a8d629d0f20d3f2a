import { connectionInfo } from '../../shared/connection-info.js';
import { mayCarryOtherClients } from '../../shared/key/reuse.js';
import type { RequestHook } from '../request-hooks.js';
import { headOfRequest } from '../request-head.js';
import type { ReuseContext } from './context.js';
import { destination } from './destination.js';
import { offWorkerRequests } from './metrics.js';

/** Set on a client socket by the "off" hook after its first request. */
const OFF_SEEN = Symbol('sticky.off-seen');

/**
 * key.reuse "off": nothing changes, but requests after the first on a
 * connection that may carry other clients' requests are checked and counted
 * when their key belongs to another worker (how much "off" misroutes).
 */
export function offRequestHook(ctx: ReuseContext): RequestHook {
  const sticky = ctx.stickyCookie !== undefined;
  return (req) => {
    const info = connectionInfo(req.socket);
    if (info === null || !mayCarryOtherClients(info, ctx.rules.order, sticky)) return false;
    // Marked on the socket itself: a WeakMap entry per connection costs new connections their rate (src/worker/reuse/forward.ts).
    const holder = req.socket as unknown as Record<symbol, true | undefined>;
    if (holder[OFF_SEEN] !== true) {
      holder[OFF_SEEN] = true;
      return false;
    }
    if (destination(headOfRequest(req), info, ctx).slot !== ctx.slot) offWorkerRequests.inc();
    return false;
  };
}
