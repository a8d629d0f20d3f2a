/**
 * Per-client accounting at the edge: a token bucket (rate with a burst) and a
 * count of open connections per client address, in a table of fixed size that
 * forgets the clients not seen for longest first. Pure: the caller passes the
 * time, so tests drive it without timers. Runs in the master (connections) and
 * in the workers (requests).
 */

/** What one table enforces. */
export interface ClientTableLimits {
  /** Open connections per client at most (absent: not counted). */
  readonly maxOpen?: number | undefined;
  /** Refill rate of the bucket, tokens per second (absent: no rate limit). */
  readonly ratePerSecond?: number | undefined;
  /** Bucket size: how many may come at once after a quiet spell. */
  readonly burst?: number | undefined;
  /** Most clients remembered; beyond it the least recently seen is forgotten. */
  readonly maxEntries: number;
}

/** Why a client was refused. */
export type LimitVerdict = 'ERR_CLIENT_CONNECTIONS' | 'ERR_CLIENT_RATE';

interface Entry {
  open: number;
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

/** The default burst: one second's worth of the rate, at least 1. */
export function defaultBurst(ratePerSecond: number): number {
  return Math.max(1, Math.ceil(ratePerSecond));
}

/**
 * See the module comment. The bound is kept with two generations instead of
 * an exact LRU list: a client seen in the current generation stays there; one
 * seen only in the previous generation moves up; when the current generation
 * holds half the size, the previous one (every client not seen since) is
 * dropped whole. Everything is O(1); a Map whose front is deleted and
 * re-inserted on every hit instead makes finding its oldest key a scan over
 * tombstones, which a flood of new addresses turns into O(n) per connection.
 */
export class ClientTable {
  private current = new Map<string, Entry>();
  private previous = new Map<string, Entry>();
  private readonly generationSize: number;
  private readonly burst: number;
  /** Clients forgotten to stay within maxEntries. */
  evictions = 0;

  constructor(private readonly limits: ClientTableLimits) {
    this.burst = limits.ratePerSecond === undefined ? 0 : (limits.burst ?? defaultBurst(limits.ratePerSecond));
    this.generationSize = Math.max(1, Math.floor(limits.maxEntries / 2));
  }

  /** Clients remembered now (at most maxEntries). */
  get size(): number {
    return this.current.size + this.previous.size;
  }

  /**
   * One more connection (or request) of `client` at `nowMs`: null when
   * admitted (it is counted), else why not (nothing is counted).
   */
  admit(client: string, nowMs: number): LimitVerdict | null {
    const entry = this.touch(client, nowMs);
    if (this.limits.maxOpen !== undefined && entry.open >= this.limits.maxOpen) return 'ERR_CLIENT_CONNECTIONS';
    if (this.limits.ratePerSecond !== undefined) {
      if (entry.tokens < 1) return 'ERR_CLIENT_RATE';
      entry.tokens -= 1;
    }
    if (this.limits.maxOpen !== undefined) entry.open++;
    return null;
  }

  /** Counts an open connection without checking (a connection that moves between workers stays one connection). */
  acquire(client: string, nowMs: number): void {
    if (this.limits.maxOpen !== undefined) this.touch(client, nowMs).open++;
  }

  /** One of `client`'s open connections closed. A forgotten client has nothing to release. */
  release(client: string): void {
    const entry = this.lookup(client);
    if (entry !== undefined && entry.open > 0) entry.open--;
  }

  /** Open connections counted for `client` (0 when not remembered). */
  openOf(client: string): number {
    return this.lookup(client)?.open ?? 0;
  }

  /** Whole seconds until `client` has a token again (for Retry-After), at least 1. */
  retryAfterSeconds(client: string, nowMs: number): number {
    const rate = this.limits.ratePerSecond;
    const entry = this.lookup(client);
    if (rate === undefined || entry === undefined) return 1;
    return Math.max(1, Math.ceil((1 - this.refilled(entry, nowMs)) / rate));
  }

  private lookup(client: string): Entry | undefined {
    return this.current.get(client) ?? this.previous.get(client);
  }

  private touch(client: string, nowMs: number): Entry {
    let entry = this.current.get(client);
    if (entry === undefined) {
      entry = this.previous.get(client);
      if (entry !== undefined) this.previous.delete(client);
      else entry = { open: 0, tokens: this.burst, at: nowMs };
      if (this.current.size >= this.generationSize) {
        // Every client not seen during the current generation is forgotten at once.
        this.evictions += this.previous.size;
        this.previous = this.current;
        this.current = new Map();
      }
      this.current.set(client, entry);
    }
    entry.tokens = this.refilled(entry, nowMs);
    entry.at = nowMs;
    return entry;
  }

  private refilled(entry: Entry, nowMs: number): number {
    const rate = this.limits.ratePerSecond;
    if (rate === undefined) return entry.tokens;
    return Math.min(this.burst, entry.tokens + (Math.max(0, nowMs - entry.at) / 1000) * rate);
  }
}
