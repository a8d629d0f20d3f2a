import { realClientAddress } from '../shared/inspect/client.js';
import { CidrList } from '../shared/ip/address.js';
import type { ClientKey } from '../shared/key/derive.js';
import type { RequestHead } from '../shared/protocol/http1.js';
import { ClientTable, type LimitVerdict } from '../shared/limits/client-table.js';
import type { Config } from '../shared/config/schema.js';

type PerClient = NonNullable<Config['limits']['perClient']>;

/**
 * `limits.perClient` in the master: new connections per second and open
 * connections per real client address, checked before the hand-off. Open
 * connections are counted from the hand-off and released when the worker that
 * holds them reports them closed (or exits), since after the hand-off the
 * master no longer sees the connection.
 */
export class ClientLimits {
  private readonly table: ClientTable;
  private readonly exempt: CidrList;
  private readonly hasExempt: boolean;
  /** Connections counted against a client, by the worker that holds them. */
  private readonly held = new Map<object, Map<string, number>>();

  constructor(readonly config: PerClient) {
    this.table = new ClientTable({
      maxOpen: config.maxConnections,
      ratePerSecond: config.connectionsPerSecond,
      burst: config.connectionBurst,
      maxEntries: config.tableSize,
    });
    this.exempt = CidrList.parse(config.exempt);
    this.hasExempt = config.exempt.length > 0;
  }

  /** Clients remembered now, and forgotten so far to stay within tableSize. */
  get size(): number {
    return this.table.size;
  }

  get evictions(): number {
    return this.table.evictions;
  }

  /**
   * The real client address the limits count a connection under: the key
   * itself where it is that address (the same rules and precedence
   * realClientAddress applies), else found from the PROXY source, the
   * trusted X-Forwarded-For entries or the peer.
   */
  clientOf(key: ClientKey, head: RequestHead | null, origin: { readonly proxySource: string | null; readonly peer: string; readonly peerTrusted: boolean }, trustedHops: number): string {
    const { proxySource, peerTrusted } = origin;
    const keyIsClient =
      key.source === 'proxy' ||
      (proxySource === null && (key.source === 'forwarded' || (key.source === 'remote' && (!peerTrusted || head === null || (head.forwardedFor.length === 0 && head.forwarded.length === 0)))));
    if (keyIsClient) return key.key;
    return realClientAddress({ proxySource, forwardedFor: head?.forwardedFor ?? [], forwarded: head?.forwarded ?? [], peer: origin.peer, peerTrusted }, trustedHops);
  }

  /** True when `client` is never limited. */
  isExempt(client: string): boolean {
    return this.hasExempt && this.exempt.contains(client);
  }

  /** A new connection of `client`: null when admitted (and counted until released), else why not. */
  admit(client: string, nowMs: number): LimitVerdict | null {
    return this.table.admit(client, nowMs);
  }

  /** Whether open connections are counted (a connection then carries its client to the worker). */
  get countsOpen(): boolean {
    return this.config.maxConnections !== undefined;
  }

  /** Whether the workers count requests (the first request of a connection then carries its client to the worker). */
  get countsRequests(): boolean {
    return this.config.requestsPerSecond !== undefined;
  }

  /** Seconds until `client` may connect again (for Retry-After). */
  retryAfterSeconds(client: string, nowMs: number): number {
    return this.table.retryAfterSeconds(client, nowMs);
  }

  /** An admitted connection is now held by `worker`. */
  heldBy(worker: object, client: string): void {
    const byClient = this.held.get(worker) ?? new Map<string, number>();
    byClient.set(client, (byClient.get(client) ?? 0) + 1);
    this.held.set(worker, byClient);
  }

  /** A connection that moves to another worker (a hand-back) is counted again there. */
  reacquire(client: string, nowMs: number): void {
    this.table.acquire(client, nowMs);
  }

  /** An admitted connection ended before any worker took it. */
  release(client: string): void {
    this.table.release(client);
  }

  /** `worker` closed these connections. */
  closedBy(worker: object, clients: readonly string[]): void {
    const byClient = this.held.get(worker);
    for (const client of clients) {
      const count = byClient?.get(client) ?? 0;
      // Only what this worker was counted for: a report cannot release another worker's connections.
      if (count === 0) continue;
      if (count === 1) byClient?.delete(client);
      else byClient?.set(client, count - 1);
      this.table.release(client);
    }
  }

  /** `worker` is gone: every connection it held is closed. */
  workerGone(worker: object): void {
    const byClient = this.held.get(worker);
    this.held.delete(worker);
    if (byClient === undefined) return;
    for (const [client, count] of byClient) for (let i = 0; i < count; i++) this.table.release(client);
  }

  /** Open connections counted for `client`. */
  openOf(client: string): number {
    return this.table.openOf(client);
  }
}
