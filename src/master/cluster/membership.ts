import type { Logger } from 'pino';
import type { ClusterMetrics } from './metrics.js';
import type { MemberRecord } from './members.js';
import { NodeRing } from './node-ring.js';

/** A member's state as this node sees it. */
export type MemberState = 'ready' | 'draining' | 'unreachable';

/** How long a peer that refused a forward is skipped at first, and at most (doubling in between). */
const UNREACHABLE_FIRST_MS = 1000;
const UNREACHABLE_MAX_MS = 10_000;

/**
 * This node's view of the cluster: the source's member list, the peers that
 * just failed a forward, and whether this node is draining; and from them the
 * ring keys are placed on (ready members only). One log line and one metric
 * per change of the ring.
 */
export class Membership {
  private records: readonly MemberRecord[] = [];
  private readonly unreachable = new Map<string, { until: number; failures: number }>();
  /** The earliest time an unreachable mark ends (the ring is rebuilt then). */
  private nextExpiry = Infinity;
  private selfDraining = false;
  private ring: NodeRing;

  constructor(
    readonly self: string,
    private readonly log: Logger,
    private readonly metrics: ClusterMetrics,
  ) {
    this.ring = new NodeRing([]);
    this.rebuild();
  }

  /** A list read from the membership source. */
  update(records: readonly MemberRecord[]): void {
    const before = this.records;
    this.records = records;
    const was = new Map(before.map((record) => [record.id, record.draining]));
    const now = new Map(records.map((record) => [record.id, record.draining]));
    const joined = [...now.keys()].filter((id) => !was.has(id));
    const left = [...was.keys()].filter((id) => !now.has(id));
    const draining = [...now].filter(([id, flag]) => flag && was.get(id) !== true).map(([id]) => id);
    if (joined.length + left.length + draining.length > 0) {
      this.metrics.membershipChanges.inc();
      this.log.info({ joined, left, draining, members: records.length }, 'cluster membership changed');
    }
    this.rebuild();
  }

  /** The node that owns `keyHash` now: this node's id when it does (or when no member is ready). */
  owner(keyHash: number, exclude?: ReadonlySet<string>): string {
    if (Date.now() >= this.nextExpiry) this.rebuild();
    return this.ring.owner(keyHash, exclude) ?? this.self;
  }

  /** A forward to `id` failed: its keys go to their next node for a while (longer each time in a row). */
  markUnreachable(id: string): void {
    const mark = this.unreachable.get(id);
    const failures = (mark?.failures ?? 0) + 1;
    const until = Date.now() + Math.min(UNREACHABLE_MAX_MS, UNREACHABLE_FIRST_MS * 2 ** (failures - 1));
    this.unreachable.set(id, { until, failures });
    if (mark === undefined || mark.until <= Date.now()) this.log.warn({ peer: id, retryInMs: until - Date.now() }, 'peer unreachable; its keys go to their next node');
    this.rebuild();
  }

  /** Whether `id` holds an unreachable mark (while its time runs, its keys go elsewhere; after, it is tried again). */
  isRetrying(id: string): boolean {
    return this.unreachable.has(id);
  }

  /** A forward to `id` went through. */
  markReachable(id: string): void {
    if (this.unreachable.delete(id)) {
      this.log.info({ peer: id }, 'peer reachable again');
      this.rebuild();
    }
  }

  /** This node is leaving: it owns no new keys from now on. */
  drain(): void {
    this.selfDraining = true;
    this.rebuild();
  }

  /** Every member with its state, this node included, ordered by id. */
  view(): Array<{ id: string; state: MemberState }> {
    const now = Date.now();
    const states = new Map<string, MemberState>();
    for (const { id, draining } of this.records) {
      const mark = this.unreachable.get(id);
      states.set(id, draining ? 'draining' : mark !== undefined && mark.until > now ? 'unreachable' : 'ready');
    }
    if (this.selfDraining || states.has(this.self)) states.set(this.self, this.selfDraining ? 'draining' : 'ready');
    return [...states].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, state]) => ({ id, state }));
  }

  /**
   * The ring over ready members. A mark whose time is up lets its peer be
   * tried again but stays until a forward succeeds, so that failures in a row
   * keep doubling the wait.
   */
  private rebuild(): void {
    const now = Date.now();
    this.nextExpiry = Infinity;
    for (const mark of this.unreachable.values()) if (mark.until > now) this.nextExpiry = Math.min(this.nextExpiry, mark.until);
    const view = this.view();
    this.ring = new NodeRing(view.filter((member) => member.state === 'ready').map((member) => member.id));
    const counts: Record<MemberState, number> = { ready: 0, draining: 0, unreachable: 0 };
    for (const member of view) counts[member.state]++;
    for (const [state, count] of Object.entries(counts)) this.metrics.members.set({ state }, count);
  }
}
