import { Counter } from 'prom-client';
import { workerRegistry } from '../metrics.js';

/** What the reuse strategies count (the worker's registry). */

/** Requests answered by another worker than their key's (must stay 0 unless key.reuse is "off"). */
export const offWorkerRequests = new Counter({
  name: 'sticky_worker_requests_off_worker_total',
  help: "Requests on reused connections served by another worker than their key's (0 unless key.reuse is off)",
  registers: [workerRegistry],
});

/** Requests after which a reused connection was handed back to the master. */
export const handedBack = new Counter({
  name: 'sticky_worker_handbacks_total',
  help: 'Reused connections the workers handed back to the master because the next request belongs to another worker',
  registers: [workerRegistry],
});

/** Sticky cookies the workers ignored on later requests of reused connections. */
export const stickyRejectedInWorker = new Counter({
  name: 'sticky_worker_cookie_rejected_total',
  help: 'Sticky cookies ignored by the workers (later requests on reused connections), by reason: malformed, forged, stale',
  labelNames: ['reason'] as const,
  registers: [workerRegistry],
});
