import t from 'tap';
import { clusterScenarios } from '../helpers/cluster-scenarios.js';
import { startRedis } from '../helpers/peers.js';

void (async () => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  // The defaults (ttlMs 5000, intervalMs 1000): a dead node must be out of every view within 10 s.
  await clusterScenarios(t, {
    name: 'redis',
    members: () => ({ redis: redis.url }),
    leaves: true,
    leaveBoundMs: 10_000,
  });
})();
