import type { Redis } from 'ioredis';
import { readAndReport, type MemberRecord, type MemberSource } from './members.js';

/** Most keys one SCAN step returns. */
const SCAN_COUNT = 1000;

/** What a node's heartbeat key holds. */
interface Heartbeat {
  readonly draining: boolean;
}

/**
 * Members from Redis: each node keeps a key `prefix + id` alive with a TTL
 * (`ttlMs`, refreshed three times per TTL) holding its draining flag, and
 * reads every `intervalMs` which keys exist. Redis expires the key of a node
 * that stops (its own clock, so the nodes' clocks need not agree): a dead
 * node leaves every view within ttlMs + intervalMs. A stopping node deletes
 * its key and leaves at the next read. ioredis is loaded only here, only
 * when the config names a Redis.
 */
export class RedisMembers implements MemberSource {
  private client: Redis | null = null;
  private draining = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly self: string,
    private readonly ttlMs: number,
    private readonly intervalMs: number,
    private readonly prefix: string,
  ) {}

  async start(onMembers: (members: readonly MemberRecord[]) => void, onError: (error: Error) => void): Promise<void> {
    const { Redis } = await import('ioredis');
    // No offline queue and one retry: a read or heartbeat while Redis is away fails at once (the last list stays).
    const client = new Redis(this.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: this.ttlMs, retryStrategy: (times) => Math.min(times * 100, 1000) });
    this.client = client;
    client.on('error', onError);
    const beat = (): Promise<void> => this.heartbeat().catch(onError);
    const read = (): Promise<void> => readAndReport(() => this.read(), () => this.stopped, onMembers, onError);
    await client.connect().catch(onError);
    await beat();
    await read();
    if (this.stopped) return;
    this.timers.push(setInterval(() => void beat(), Math.max(100, Math.floor(this.ttlMs / 3))), setInterval(() => void read(), this.intervalMs));
    for (const timer of this.timers) timer.unref();
  }

  private async heartbeat(): Promise<void> {
    const value: Heartbeat = { draining: this.draining };
    await (this.client as Redis).set(this.prefix + this.self, JSON.stringify(value), 'PX', this.ttlMs);
  }

  /** Every live heartbeat key: SCAN (never KEYS, which blocks Redis) and one MGET. */
  async read(): Promise<MemberRecord[]> {
    const client = this.client as Redis;
    const pattern = `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const keys = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      for (const key of batch) keys.add(key);
      cursor = next;
    } while (cursor !== '0');
    if (keys.size === 0) return [];
    const names = [...keys];
    const values = await client.mget(names);
    const members: MemberRecord[] = [];
    names.forEach((key, index) => {
      const value = values[index];
      // Expired between SCAN and MGET: gone.
      if (value === null || value === undefined) return;
      members.push({ id: key.slice(this.prefix.length), draining: parseDraining(value) });
    });
    return members;
  }

  async drain(): Promise<void> {
    this.draining = true;
    await this.heartbeat().catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    const client = this.client;
    if (client === null) return;
    // Leave at once rather than after the TTL.
    await client.del(this.prefix + this.self).catch(() => {});
    await client.quit().catch(() => client.disconnect());
  }
}

/** A heartbeat's draining flag (anything unreadable counts as not draining: the node is alive). */
function parseDraining(value: string): boolean {
  try {
    return (JSON.parse(value) as Partial<Heartbeat>).draining === true;
  } catch {
    return false;
  }
}
