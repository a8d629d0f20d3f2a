import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The cluster's metrics, registered with the master's only when `cluster` is
 * configured. The forward latency and the open forwards are counted where the
 * bytes are pumped, in the workers (`sticky_worker_cluster_*`).
 */
export class ClusterMetrics {
  readonly forwarded: Counter<'peer'>;
  readonly peerErrors: Counter<'peer' | 'reason'>;
  readonly membershipChanges: Counter;
  readonly members: Gauge<'state'>;
  readonly fromPeers: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.forwarded = new Counter({ name: 'sticky_cluster_forwarded_total', help: 'Connections sent on to the node that owns their key, by owner', labelNames: ['peer'], registers });
    this.peerErrors = new Counter({
      name: 'sticky_cluster_peer_errors_total',
      help: 'Forwards that could not reach a peer (refused, timeout, error): the connection went to its next node; and membership reads that failed (peer "membership")',
      labelNames: ['peer', 'reason'],
      registers,
    });
    this.membershipChanges = new Counter({ name: 'sticky_cluster_membership_changes_total', help: 'Changes of the member list this node places keys on', registers });
    this.members = new Gauge({ name: 'sticky_cluster_members', help: 'Members by state (ready, draining, unreachable), this node included', labelNames: ['state'], registers });
    this.fromPeers = new Counter({ name: 'sticky_cluster_peer_connections_total', help: 'Connections other nodes forwarded to this node', registers });
  }
}
