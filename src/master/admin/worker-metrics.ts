import { AggregatorRegistry } from 'prom-client';
import { validExposition } from './metrics.js';

/**
 * Sums the workers' prom-client registries into one Prometheus text block,
 * with prom-client's own cluster aggregation (`AggregatorRegistry.aggregate`:
 * each metric by its `aggregator`, summed by default). Only the static method is
 * used: constructing an AggregatorRegistry would add prom-client's own cluster
 * message listeners, and the master speaks its own IPC union instead.
 *
 * @param responses one `registry.getMetricsAsJSON()` array per worker.
 */
export async function aggregateWorkerMetrics(responses: readonly unknown[][]): Promise<string> {
  if (responses.length === 0) return '';
  return validExposition(await AggregatorRegistry.aggregate([...responses]).metrics());
}
