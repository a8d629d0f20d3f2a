import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../../shared/config/schema.js';
import type { PeerForward } from '../../shared/connection-info.js';
import { CidrList } from '../../shared/ip/address.js';
import { LogLimiter } from '../../shared/log/log-limiter.js';
import type { PeerOutcome } from '../../shared/wire/ipc.js';
import type { Endpoints } from '../client-conn.js';
import { DnsMembers } from './dns-members.js';
import { parseMemberId, StaticMembers, type MemberSource } from './members.js';
import { Membership, type MemberState } from './membership.js';
import { ClusterMetrics } from './metrics.js';
import { peerHeader, type ForwardedFacts } from './peer-header.js';
import { RedisMembers } from './redis-members.js';

/** The `cluster` config section. */
export type ClusterConfig = NonNullable<Config['cluster']>;

/** How many nodes a worker tries for one connection before serving it here. */
const MAX_PEERS_TRIED = 3;

/** What `GET /cluster` answers. */
export interface ClusterView {
  readonly self: string;
  readonly members: ReadonlyArray<{ readonly id: string; readonly state: MemberState }>;
}

/**
 * Many nodes, as the master sees them: which node owns a key, and the plan
 * for a connection another node owns (the owner, then its next nodes), which
 * a worker carries out (src/worker/peer-forward.ts), so that the master's
 * event loop never pumps bytes. Connections on the peer port are the
 * balancer's (src/master/balancer.ts): they are never forwarded again.
 */
export class Cluster {
  readonly self: string;
  /** Who may connect to the peer port. */
  readonly peerTrusted: CidrList;
  private readonly membership: Membership;
  private readonly source: MemberSource;
  private readonly metrics: ClusterMetrics;
  private readonly errors = new LogLimiter(1, 10_000);

  constructor(
    private readonly config: ClusterConfig,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.self = parseMemberId(config.self).id;
    this.peerTrusted = CidrList.parse(config.peer.trustedFrom);
    this.metrics = new ClusterMetrics(registry);
    this.membership = new Membership(this.self, log, this.metrics);
    this.source = memberSource(config, this.self);
  }

  /** Reads the member list once (and keeps reading); resolves after the first read. */
  start(): Promise<void> {
    return this.source.start(
      (records) => this.membership.update(records),
      (error) => {
        this.metrics.peerErrors.inc({ peer: 'membership', reason: 'error' });
        const suppressed = this.errors.admit('membership');
        if (suppressed >= 0) this.log.warn({ err: error.message, suppressed }, 'cluster membership read failed; keeping the last member list');
      },
    );
  }

  /** The node that owns `keyHash` now (this node's id when it does). */
  ownerOf(keyHash: number): string {
    return this.membership.owner(keyHash);
  }

  /** A connection on the peer port: this node takes it whatever it owns. */
  fromPeer(): void {
    this.metrics.fromPeers.inc();
  }

  /**
   * Where a connection that `owner` owns goes: the owner, then the key's next
   * nodes until this node's turn (a worker tries them in order and serves the
   * connection here when none answers). Null when there is no client address to
   * write in the header (a UNIX socket PROXY source): served where it arrived.
   */
  plan(facts: ForwardedFacts, tcp: Endpoints | null, keyHash: number, owner: string, acceptedAt: bigint): PeerForward | null {
    const header = peerHeader(facts, tcp);
    if (header === null) return null;
    const peers: Array<{ id: string; host: string; port: number }> = [];
    const tried = new Set<string>();
    for (let next = owner; next !== this.self && !tried.has(next) && peers.length < MAX_PEERS_TRIED; next = this.membership.owner(keyHash, tried)) {
      tried.add(next);
      peers.push(parseMemberId(next));
    }
    this.metrics.forwarded.inc({ peer: owner });
    return { peers, header: header.toString('base64'), acceptedAt: Number(acceptedAt), retrying: peers.filter((peer) => this.membership.isRetrying(peer.id)).map((peer) => peer.id) };
  }

  /** What a worker's forward found: an unreachable peer's keys go to their next node for a while. */
  onPeerReport(peer: string, outcome: PeerOutcome): void {
    if (outcome === 'connected') {
      this.membership.markReachable(peer);
      return;
    }
    this.metrics.peerErrors.inc({ peer, reason: outcome });
    this.membership.markUnreachable(peer);
  }

  /** Every member and its state. */
  view(): ClusterView {
    return { self: this.self, members: this.membership.view() };
  }

  /** This node is leaving: no new keys here; peers are told where the source can. */
  async drain(): Promise<void> {
    this.membership.drain();
    await this.source.drain();
  }

  /** Stops reading the member list and leaves it where the source can. */
  stop(): Promise<void> {
    return this.source.stop();
  }
}

function memberSource(config: ClusterConfig, self: string): MemberSource {
  const members = config.members;
  if (Array.isArray(members)) return new StaticMembers(members);
  if ('dns' in members) return new DnsMembers(members.dns, members.port, members.intervalMs, members.servers);
  return new RedisMembers(members.redis, self, members.ttlMs, members.intervalMs, members.prefix);
}
