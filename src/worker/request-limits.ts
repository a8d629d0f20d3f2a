import type http from 'node:http';
import net from 'node:net';
import type { Logger } from 'pino';
import { connectionInfo } from '../shared/connection-info.js';
import { CidrList } from '../shared/ip/address.js';
import { TOO_MANY_REQUESTS_BODY, tooManyRequestsHeaders } from '../shared/limits/too-many.js';
import { ClientTable } from '../shared/limits/client-table.js';
import { LogLimiter } from '../shared/log/log-limiter.js';
import type { ResolvedConfig } from '../shared/config/load.js';
import { Counter } from 'prom-client';
import { requestClient } from './access-log.js';
import type { RequestHook } from './request-hooks.js';
import { workerRegistry } from './metrics.js';

/** Requests answered 429 by limits.perClient.requestsPerSecond. */
const limitedRequests = new Counter({
  name: 'sticky_worker_limited_requests_total',
  help: 'Requests answered 429 because their client was over limits.perClient.requestsPerSecond',
  registers: [workerRegistry],
});

/**
 * The request's real client address. The first request of a client connection,
 * and every request of one that cannot carry other clients (its peer is not a
 * trusted proxy), belong to the client the master found: no second parse.
 * Later requests from a trusted proxy are parsed (each may be another client's);
 * so is every request relayed from another worker (its stream carries the
 * relayed request's client, not the first one's).
 */
function clientOf(req: http.IncomingMessage, trusted: CidrList, hops: number): string {
  const socket = req.socket;
  if (socket instanceof net.Socket) {
    const info = connectionInfo(socket);
    const known = info?.firstClient;
    if (info !== null && known !== undefined) {
      // Only the first request is the master's when a trusted proxy's later ones may be other clients'.
      if (info.peerTrusted === true) info.firstClient = undefined;
      return known;
    }
  }
  return requestClient(req, trusted, hops);
}

/**
 * limits.perClient.requestsPerSecond: every request, the first of a
 * connection and each later one on a reused connection, is counted against
 * its real client address (the same rules as the master's) in this worker's
 * table; over the rate it gets a 429 with Retry-After and never reaches the
 * app. Null when the limit is not set: no hook, no cost.
 */
export function requestLimitHook(config: ResolvedConfig, log: Logger): RequestHook | null {
  const perClient = config.limits.perClient;
  if (perClient?.requestsPerSecond === undefined) return null;
  const table = new ClientTable({ ratePerSecond: perClient.requestsPerSecond, burst: perClient.requestBurst, maxEntries: perClient.tableSize });
  const exempt = CidrList.parse(perClient.exempt);
  const hasExempt = perClient.exempt.length > 0;
  const trusted = CidrList.parse(config.proxyProtocol.trustedFrom);
  const hops = config.key.forwardedTrustedHops;
  const logLimiter = new LogLimiter();
  return (req, res) => {
    const client = clientOf(req, trusted, hops);
    if (hasExempt && exempt.contains(client)) return false;
    const now = Date.now();
    if (table.admit(client, now) === null) return false;
    limitedRequests.inc();
    const suppressed = logLimiter.admit('ERR_CLIENT_RATE');
    if (suppressed >= 0) log.warn({ client, reason: 'ERR_CLIENT_RATE', status: 429, where: 'worker', suppressed }, 'request refused');
    // Drained, not read: the app never sees a body it did not ask for.
    req.resume();
    res.writeHead(429, tooManyRequestsHeaders(table.retryAfterSeconds(client, now)));
    res.end(TOO_MANY_REQUESTS_BODY);
    return true;
  };
}
