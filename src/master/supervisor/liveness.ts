/**
 * Whether a worker is answering, from what the master sees of it: when it
 * last sent anything (its heartbeat, an ack, a report), and whether the
 * hand-offs the kernel delivered to it some time ago have all been
 * acknowledged. Pure: the caller passes the time, so tests drive it without
 * timers or processes.
 */

/** What makes a worker unresponsive. */
export interface LivenessLimits {
  /** Nothing heard from it for this long. */
  readonly silentMs: number;
  /** A hand-off delivered this long ago still without its ack. */
  readonly ackTimeoutMs: number;
}

/** Why a worker is unresponsive, as logged and counted. */
export type Unresponsive = 'silent' | 'ack-timeout';

/** One point in time and how many hand-offs had been delivered by then. */
interface Checkpoint {
  readonly at: number;
  readonly delivered: number;
}

/**
 * One worker's liveness. Acknowledgements come back in the order the worker
 * received the connections (one channel per worker), so "every hand-off
 * delivered before T is acknowledged" is "acked ≥ delivered at T": counters and
 * a few checkpoints, nothing per connection.
 */
export class Liveness {
  private heardAt: number;
  private delivered = 0;
  private acked = 0;
  /** Oldest first; the front is the newest one at least ackTimeoutMs old (once there is one). */
  private readonly checkpoints: Checkpoint[] = [];

  constructor(nowMs: number) {
    this.heardAt = nowMs;
  }

  /** The worker sent something. */
  heard(nowMs: number): void {
    this.heardAt = nowMs;
  }

  /** The kernel took `count` hand-offs for this worker (they are in its queue now). */
  deliveredSome(count: number): void {
    this.delivered += count;
  }

  /** The worker acknowledged (or refused) a hand-off: either way it answered. */
  answeredOne(): void {
    this.acked++;
  }

  /** Hand-offs delivered and not yet acknowledged. */
  get unacked(): number {
    return this.delivered - this.acked;
  }

  /** Null while the worker answers, else why it does not (call it at a steady tick: it records a checkpoint). */
  check(nowMs: number, limits: LivenessLimits): Unresponsive | null {
    this.checkpoints.push({ at: nowMs, delivered: this.delivered });
    const due = nowMs - limits.ackTimeoutMs;
    while (this.checkpoints.length > 1 && (this.checkpoints[1] as Checkpoint).at <= due) this.checkpoints.shift();
    const oldest = this.checkpoints[0] as Checkpoint;
    if (oldest.at <= due && this.acked < oldest.delivered) return 'ack-timeout';
    if (nowMs - this.heardAt >= limits.silentMs) return 'silent';
    return null;
  }

  /** Milliseconds since the worker last sent anything. */
  silentFor(nowMs: number): number {
    return nowMs - this.heardAt;
  }
}
