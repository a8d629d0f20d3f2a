import type http from 'node:http';
import type { Logger } from 'pino';
import { realClientAddress, truncateForLog } from '../shared/inspect/client.js';
import type { CidrList } from '../shared/ip/address.js';
import { connectionInfo } from '../shared/connection-info.js';
import type { RequestHook } from './request-hooks.js';
import { fieldValues } from './request-head.js';

/**
 * Who sent a request, by the same rules the master uses for its log lines:
 * the honoured PROXY source, else the trusted X-Forwarded-For entry of *this*
 * request (an ALB reuses one upstream connection for many clients), else the
 * TCP peer.
 */
export function requestClient(req: http.IncomingMessage, trusted: CidrList, hops: number): string {
  const proxySource = connectionInfo(req.socket)?.proxy?.source?.address ?? null;
  // After an honoured PROXY header remoteAddress is its source; otherwise the TCP peer.
  const peer = req.socket.remoteAddress ?? '';
  const xff = req.headers['x-forwarded-for'];
  const forwarded = req.headers.forwarded;
  return realClientAddress(
    {
      proxySource,
      forwardedFor: fieldValues(xff),
      forwarded: fieldValues(forwarded),
      peer,
      peerTrusted: proxySource === null && trusted.contains(peer),
    },
    hops,
  );
}


/**
 * `accessLog: true`: one pino line per request, when its response
 * has been sent or the connection went away first: the real client address,
 * method, URL (truncated), status, duration in ms; `worker` and `pid` come
 * from the runtime logger's bindings.
 *
 * Written here rather than with pino-http: this needs the balancer's idea of
 * the client (PROXY source, trusted X-Forwarded-For) and nothing else, while
 * pino-http's default serializers log every request header (cookies and
 * authorization included) and add a per-request child logger we do not use.
 */
export function accessLogHook(log: Logger, trusted: CidrList, hops: number): RequestHook {
  return (req, res) => {
    const start = process.hrtime.bigint();
    const done = (): void => {
      res.removeListener('finish', done);
      res.removeListener('close', done);
      log.info(
        {
          client: requestClient(req, trusted, hops),
          method: req.method,
          url: truncateForLog(req.url ?? ''),
          // A connection closed before the answer was complete: no status was sent.
          status: res.writableFinished ? res.statusCode : null,
          ms: Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100,
        },
        'request',
      );
    };
    res.once('finish', done);
    res.once('close', done);
    return false;
  };
}
