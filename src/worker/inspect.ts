import type http from 'node:http';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { ResolvedConfig } from '../shared/config/load.js';
import { truncateForLog } from '../shared/inspect/client.js';
import { refusalBody, refusalHeaders } from '../shared/inspect/response.js';
import { compileInspector, type Inspector, type Refusal } from '../shared/inspect/rules.js';
import { CidrList } from '../shared/ip/address.js';
import { LogLimiter } from '../shared/log/log-limiter.js';
import { accessLogHook, requestClient } from './access-log.js';
import type { RequestHook } from './request-hooks.js';
import { workerRegistry } from './metrics.js';

/** Called once per request the hook refused (the runtime logs and counts it). */
export type OnRefused = (req: http.IncomingMessage, refusal: Refusal) => void;

/**
 * The worker side of edge inspection: the same rule engine as the
 * master, run on every request the app's server parses. The master already
 * checked the first request of a connection whose head it could parse; this
 * catches the later requests of a keep-alive connection, and the first request
 * of a connection the master could not read as HTTP/1.x (a head over
 * `limits.peekBytes`, TLS terminated by the worker). Checking the first
 * request again costs one rule check and cannot refuse what the master allowed.
 *
 * A refused request gets the same small answer as from the master, with
 * `Connection: close`: Node then closes the connection after it without
 * reading the request's body.
 */
export function inspectHook(inspector: Inspector, onRefused: OnRefused): RequestHook {
  return (req, res) => {
    const refusal = inspector(req.method ?? '', req.url ?? '', req.headers.host);
    if (refusal === null) return false;
    onRefused(req, refusal);
    res.writeHead(refusal.status, refusalHeaders(refusal));
    // Node sends no body for a HEAD request whatever is passed here.
    res.end(refusalBody(refusal));
    return true;
  };
}

/**
 * Refusals the workers answered, by rule (exact; the log lines are
 * rate-limited). Summed across workers by the master on `GET /metrics`; the
 * master's own refusals are `sticky_rejected_requests_total{where="master"}`.
 */
const rejectedRequests = new Counter({
  name: 'sticky_worker_rejected_requests_total',
  help: 'Requests refused by inspection rules in the workers (requests after the first on a connection), by rule',
  labelNames: ['rule'] as const,
  registers: [workerRegistry],
});

/**
 * The request hooks for `config.accessLog` and `config.inspect`, in the order
 * they must run: the access log first, so that refused requests are in it too.
 * Neither section set: no hook, zero cost.
 */
export function edgeHooks(config: ResolvedConfig, log: Logger): RequestHook[] {
  const hooks: RequestHook[] = [];
  if (!config.accessLog && !config.inspect) return hooks;
  const trusted = CidrList.parse(config.proxyProtocol.trustedFrom);
  const hops = config.key.forwardedTrustedHops;
  if (config.accessLog) hooks.push(accessLogHook(log, trusted, hops));
  if (config.inspect) {
    const limiter = new LogLimiter();
    hooks.push(
      inspectHook(compileInspector(config.inspect), (req, refusal) => {
        rejectedRequests.inc({ rule: refusal.rule });
        const suppressed = limiter.admit(refusal.rule);
        if (suppressed < 0) return;
        log.warn(
          {
            client: requestClient(req, trusted, hops),
            method: req.method,
            path: truncateForLog(req.url ?? ''),
            rule: refusal.rule,
            status: refusal.status,
            where: 'worker',
            suppressed,
          },
          'request refused',
        );
      }),
    );
  }
  return hooks;
}
