import type { Logger } from 'pino';
import { CidrList } from '../src/ip/address.js';
import { ClientTable } from '../src/limits/client-table.js';
import { LogLimiter } from '../src/master/log-limiter.js';
import type { ResolvedConfig } from '../src/config/load.js';
import { Counter } from 'prom-client';
import { requestClient } from './access-log.js';
import type { RequestHook } from './request-hooks.js';
import { workerRegistry } from './worker-metrics.js';

/** Requests answered 429 by limits.perClient.requestsPerSecond. */
const limitedRequests = new Counter({
  name: 'sticky_worker_limited_requests_total',
  help: 'Requests answered 429 because their client was over limits.perClient.requestsPerSecond',
  registers: [workerRegistry],
});

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
    const client = requestClient(req, trusted, hops);
    if (hasExempt && exempt.contains(client)) return false;
    const now = Date.now();
    if (table.admit(client, now) === null) return false;
    limitedRequests.inc();
    const suppressed = logLimiter.admit('ERR_CLIENT_RATE');
    if (suppressed >= 0) log.warn({ client, reason: 'ERR_CLIENT_RATE', status: 429, where: 'worker', suppressed }, 'request refused');
    const body = '429 Too Many Requests\n';
    // Drained, not read: the app never sees a body it did not ask for.
    req.resume();
    res.writeHead(429, { 'retry-after': String(table.retryAfterSeconds(client, now)), 'content-type': 'text/plain', 'content-length': String(body.length) });
    res.end(body);
    return true;
  };
}
