import { AggregatorRegistry } from 'prom-client';

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
  const text = await AggregatorRegistry.aggregate([...responses]).metrics();
  // prom-client writes a NaN sample (an event-loop lag mean before its first
  // sample) as "Nan"; the exposition format spells it "NaN".
  return text.replace(/ Nan$/gm, ' NaN');
}
