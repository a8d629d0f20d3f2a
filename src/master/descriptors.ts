import { readFileSync } from 'node:fs';

/**
 * The master's descriptor budget. A descriptor number is the lowest one free
 * (POSIX), so a new connection's own number says how many are open: when it
 * reaches the ceiling, the master is about to run out. Past the ceiling a few
 * stay in reserve for what must never fail for lack of one (a worker's
 * respawn: a socket pair and a pipe; the admin API; the upgrade hand-over).
 */

/** Descriptors kept free below the soft limit: 1/16 of it, at least 32, at most 256. */
export function descriptorReserve(limit: number): number {
  return Math.min(256, Math.max(32, Math.floor(limit / 16)));
}

/** The soft "Max open files" of a /proc/<pid>/limits text, or null. */
export function parseOpenFileLimit(limits: string): number | null {
  const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits);
  if (match === null || match[1] === 'unlimited') return null;
  return Number(match[1]);
}

/**
 * The lowest descriptor number a connection may have before the master makes
 * room, or null where the limit cannot be read (not Linux): Node has no
 * getrlimit, and /proc/self/limits is what the kernel enforces.
 */
export function descriptorCeiling(): number | null {
  let limit: number | null;
  try {
    limit = parseOpenFileLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return null;
  }
  return limit === null ? null : Math.max(1, limit - descriptorReserve(limit));
}

/**
 * Whether a new connection finds the master at its ceiling. A descriptor
 * number at the ceiling proves it (every lower one is open); after that, the
 * count of connections the master held then stands in for it, because a
 * connection closed to make room frees a low number that the next accept
 * takes, and that number alone would say there is room. Forgotten once the
 * master holds a quarter fewer.
 */
export class DescriptorBudget {
  private heldAtCeiling: number | null = null;

  constructor(private readonly ceiling: number) {}

  /** `fd`: the new connection's descriptor; `held`: connections the master holds besides it. */
  isFull(fd: number, held: number): boolean {
    if (fd >= this.ceiling) {
      this.heldAtCeiling = held;
      return true;
    }
    if (this.heldAtCeiling === null) return false;
    if (held >= this.heldAtCeiling) return true;
    if (held < this.heldAtCeiling * 0.75) this.heldAtCeiling = null;
    return false;
  }
}
