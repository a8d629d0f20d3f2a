import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../../shared/config/schema.js';
import { CidrList } from '../../shared/ip/address.js';
import { LogLimiter } from '../../shared/log/log-limiter.js';
import type { ClientConn } from '../client-conn.js';
import { DnsMembers } from './dns-members.js';
import { forwardConnection } from './forward.js';
import { parseMemberId, StaticMembers, type MemberSource } from './members.js';
import { Membership, type MemberState } from './membership.js';
import { ClusterMetrics } from './metrics.js';
import { peerHeader, type ForwardedFacts } from './peer-header.js';
import { RedisMembers } from './redis-members.js';

/** The `cluster` config section. */
export type ClusterConfig = NonNullable<Config['cluster']>;

/** What `GET /cluster` answers. */
export interface ClusterView {
  readonly self: string;
  readonly members: ReadonlyArray<{ readonly id: string; readonly state: MemberState }>;
}

/**
 * Many nodes, as the master sees them: which node owns a key, and the
 * forwarding of a connection to that node (with its next node when the
 * owner cannot be reached). Connections on the peer port are the balancer's
 * (src/master/balancer.ts): they are never forwarded again.
 */
export class Cluster {
  readonly self: string;
  /** Who may connect to the peer port. */
  readonly peerTrusted: CidrList;
  private readonly membership: Membership;
  private readonly source: MemberSource;
  private readonly metrics: ClusterMetrics;
  private readonly errors = new LogLimiter(1, 10_000);
  private open = 0;
  private stopping = false;
  /** Forwards under way, to cut when a drain runs out of time. */
  private readonly forwards = new Set<{ destroy(): void }>();

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

  /** Connections this node is forwarding, or connecting to forward. */
  get connections(): number {
    return this.open;
  }

  /** A connection on the peer port: this node takes it whatever it owns. */
  fromPeer(): void {
    this.metrics.fromPeers.inc();
  }

  /**
   * Forwards a connection to `owner`; when it cannot be reached, to the key's
   * next node, and when that is this node, `serveHere` takes it (untouched).
   */
  forward(conn: ClientConn, bytes: Buffer, facts: ForwardedFacts, keyHash: number, owner: string, acceptedAt: bigint, serveHere: () => void): void {
    const header = peerHeader(facts, conn.endpoints());
    if (header === null) {
      // No client address to write (a UNIX socket PROXY source): served where it arrived.
      serveHere();
      return;
    }
    this.open++;
    const tried = new Set<string>();
    let current: { destroy(): void } | null = null;
    const attempt = (to: string): void => {
      tried.add(to);
      if (current !== null) this.forwards.delete(current);
      current = forwardConnection(conn, parseMemberId(to), header, bytes, this.config.peer.connectTimeoutMs, {
        connected: () => {
          this.membership.markReachable(to);
          this.metrics.forwarded.inc({ peer: to });
          this.metrics.forwardSeconds.observe({ peer: to }, Number(process.hrtime.bigint() - acceptedAt) / 1e9);
          this.metrics.forwarding.inc();
        },
        unreachable: (reason) => {
          this.metrics.peerErrors.inc({ peer: to, reason });
          this.membership.markUnreachable(to);
          const next = this.membership.owner(keyHash, tried);
          if (next !== this.self && !tried.has(next)) {
            attempt(next);
            return;
          }
          this.open--;
          if (current !== null) this.forwards.delete(current);
          if (!this.stopping) serveHere();
          else conn.close();
        },
        closed: () => {
          this.open--;
          if (current !== null) this.forwards.delete(current);
          this.metrics.forwarding.dec();
        },
      });
      this.forwards.add(current);
    };
    attempt(owner);
  }

  /** Waits up to `timeoutMs` for the forwarded connections to end, then cuts the rest. */
  async closeForwards(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const deadline = Date.now() + timeoutMs;
    while (this.open > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const forward of [...this.forwards]) forward.destroy();
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
