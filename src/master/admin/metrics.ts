import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The master's Prometheus metrics (prom-client). Every refusal, fallback and
 * hand-off is counted exactly here, even when its log line is rate-limited.
 */
export class MasterMetrics {
  /** The registry `/metrics` renders. */
  readonly registry = new Registry();

  constructor() {
    // The master's own CPU, memory, event-loop lag and handles (prom-client's default collectors).
    collectDefaultMetrics({ register: this.registry, labels: { process: 'master' } });
  }

  /** The registry as Prometheus text. */
  async render(): Promise<string> {
    return validExposition(await this.registry.metrics());
  }

  readonly handoffs = new Counter({
    name: 'sticky_handoffs_total',
    help: 'Connections handed to a worker, by worker slot and key source',
    labelNames: ['worker', 'key_source'] as const,
    registers: [this.registry],
  });

  readonly handoffSeconds = new Histogram({
    name: 'sticky_handoff_seconds',
    help: 'From accept to the worker acknowledging the connection',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });

  readonly refused = new Counter({
    name: 'sticky_refused_connections_total',
    help: 'Connections closed by the master without a byte written, by reason code',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly rejectedRequests = new Counter({
    name: 'sticky_rejected_requests_total',
    help: 'Requests refused by inspection rules, by rule and where (master or worker)',
    labelNames: ['rule', 'where'] as const,
    registers: [this.registry],
  });

  readonly active = new Gauge({
    name: 'sticky_active_connections',
    help: 'Open client connections per worker slot, as the workers report them',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });

  /** Where the client-table gauge reads its value when scraped (the balancer sets it with limits.perClient). */
  clientTableSize: () => number = () => 0;

  readonly clientTableEntries: Gauge = new Gauge({
    name: 'sticky_client_table_entries',
    help: 'Client addresses limits.perClient tracks in the master (at most limits.perClient.tableSize)',
    registers: [this.registry],
    collect: (): void => this.clientTableEntries.set(this.clientTableSize()),
  });

  readonly peeking = new Gauge({
    name: 'sticky_peeking_connections',
    help: 'Connections the master is still reading the first bytes of',
    registers: [this.registry],
  });

  readonly respawns = new Counter({
    name: 'sticky_worker_respawns_total',
    help: 'Workers respawned into their slot after an unplanned exit',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });

  readonly unresponsive = new Counter({
    name: 'sticky_worker_unresponsive_total',
    help: 'Times a worker stopped answering (reason: silent, no message for workers.unresponsiveMs; ack-timeout, a hand-off not acknowledged within workers.ackTimeoutMs)',
    labelNames: ['worker', 'reason'] as const,
    registers: [this.registry],
  });

  readonly fallbacks = new Counter({
    name: 'sticky_fallbacks_total',
    help: "Connections sent to a key's next choice: its slot was not ready, over its load bound, or the send failed",
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly handbacks = new Counter({
    name: 'sticky_handbacks_total',
    help: 'Connections handed back by a worker for re-routing (key.reuse handback)',
    registers: [this.registry],
  });

  readonly reroutedRequests = new Counter({
    name: 'sticky_rerouted_requests_total',
    help: 'Requests on a reused connection that were handed back and then served by another worker than the one that handed them back',
    registers: [this.registry],
  });

  readonly stickyCookieRejected = new Counter({
    name: 'sticky_cookie_rejected_total',
    help: 'Sticky cookies ignored by the master (first request of a connection or a handed-back one), by reason: malformed, forged, stale',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly workers = new Gauge({
    name: 'sticky_workers',
    help: 'Worker processes by state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
}

/**
 * prom-client writes a NaN sample (an event-loop lag mean before its first
 * sample) as "Nan"; the exposition format spells it "NaN".
 */
export function validExposition(text: string): string {
  return text.replace(/ Nan$/gm, ' NaN');
}
