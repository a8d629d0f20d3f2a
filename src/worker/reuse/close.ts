import { connectionInfo } from '../../shared/connection-info.js';
import type { KeyRules } from '../../shared/key/derive.js';
import { mayCarryOtherClients } from '../../shared/key/reuse.js';
import type { RequestHook } from '../request-hooks.js';

/**
 * key.reuse "close": every response on a connection that may carry other
 * clients' requests says `Connection: close`, so the proxy opens a fresh
 * connection, decided by the master, for its next request.
 */
export function closeRequestHook(rules: KeyRules, stickyCookie: boolean): RequestHook {
  return (req, res) => {
    // HTTP/2 has no Connection header (RFC 9113 8.2.2); its streams are not this case.
    if (req.httpVersionMajor !== 1) return false;
    const info = connectionInfo(req.socket);
    if (info !== null && mayCarryOtherClients(info, rules.order, stickyCookie)) {
      res.shouldKeepAlive = false;
      res.setHeader('connection', 'close');
    }
    return false;
  };
}
