import t from 'tap';
import { clusterScenarios } from '../helpers/cluster-scenarios.js';
import { startDnsmasq } from '../helpers/peers.js';

const NAME = 'sticky.cluster.test';

void (async () => {
  const hostsOf = (ids: readonly string[]): string[] => ids.map((id) => `${id.slice(0, id.lastIndexOf(':'))} ${NAME}`);
  const dns = await startDnsmasq([]);
  t.teardown(() => dns.stop());
  const intervalMs = 500;
  let first = true;
  await clusterScenarios(t, {
    name: 'dns',
    members: (ids, port) => {
      if (first) {
        first = false;
        void dns.setHosts(hostsOf(ids));
      }
      return { dns: NAME, port, intervalMs, servers: [dns.server] };
    },
    // What Kubernetes does: a dead pod's record leaves the headless service.
    onNodeGone: (id, ids) => dns.setHosts(hostsOf(ids.filter((other) => other !== id))),
    onNodeBack: (ids) => dns.setHosts(hostsOf(ids)),
    leaves: true,
    leaveBoundMs: 2 * intervalMs + 2000,
  });
})();
