import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The cluster's metrics, registered with the master's only when `cluster` is configured. */
export class ClusterMetrics {
  readonly forwarded: Counter<'peer'>;
  readonly forwardSeconds: Histogram<'peer'>;
  readonly peerErrors: Counter<'peer' | 'reason'>;
  readonly membershipChanges: Counter;
  readonly members: Gauge<'state'>;
  readonly forwarding: Gauge;
  readonly fromPeers: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.forwarded = new Counter({ name: 'sticky_cluster_forwarded_total', help: 'Connections forwarded to the node that owns their key, by peer', labelNames: ['peer'], registers });
    this.forwardSeconds = new Histogram({
      name: 'sticky_cluster_forward_seconds',
      help: "From accept to the owner's peer port accepting the forwarded connection, by peer",
      labelNames: ['peer'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.peerErrors = new Counter({
      name: 'sticky_cluster_peer_errors_total',
      help: 'Forwards that could not reach a peer (refused, timeout, error): the connection went to its next node; and membership reads that failed (peer "membership")',
      labelNames: ['peer', 'reason'],
      registers,
    });
    this.membershipChanges = new Counter({ name: 'sticky_cluster_membership_changes_total', help: 'Changes of the member list this node places keys on', registers });
    this.members = new Gauge({ name: 'sticky_cluster_members', help: 'Members by state (ready, draining, unreachable), this node included', labelNames: ['state'], registers });
    this.forwarding = new Gauge({ name: 'sticky_cluster_forwarding', help: 'Forwarded connections open now (this node pumps their bytes)', registers });
    this.fromPeers = new Counter({ name: 'sticky_cluster_peer_connections_total', help: 'Connections other nodes forwarded to this node', registers });
  }
}
