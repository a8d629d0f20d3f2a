import { Counter, Gauge, Registry } from 'prom-client';
import t from 'tap';
import { aggregateWorkerMetrics } from '../../../src/master/admin/worker-metrics.js';
import { parseExposition, sumOf } from '../../helpers/prometheus.js';

/** A worker-like registry with given values, as the worker would send it. */
async function workerJson(requests: number, open: number): Promise<unknown[]> {
  const registry = new Registry();
  new Counter({ name: 'sticky_worker_requests_total', help: 'r', registers: [registry] }).inc(requests);
  new Gauge({ name: 'sticky_worker_open_connections', help: 'o', registers: [registry] }).set(open);
  // Through the same structured clone the IPC channel applies.
  return structuredClone(await registry.getMetricsAsJSON()) as unknown[];
}

t.test('the workers’ registries are summed into one valid exposition', async (t) => {
  const text = await aggregateWorkerMetrics([await workerJson(3, 1), await workerJson(4, 2), await workerJson(10, 0)]);
  const exposition = parseExposition(text);
  t.equal(sumOf(exposition, 'sticky_worker_requests_total'), 17);
  t.equal(sumOf(exposition, 'sticky_worker_open_connections'), 3);
  t.equal(exposition.types.get('sticky_worker_requests_total'), 'counter');
});

t.test('no worker answered: nothing to add', async (t) => {
  t.equal(await aggregateWorkerMetrics([]), '');
});
