/**
 * Crash-loop backoff for respawning a slot (like systemd's RestartSec with a
 * doubling step): the first respawn is immediate, so a one-off crash costs only
 * a fork; a slot that keeps crashing is retried at 100 ms, 200 ms, 400 ms, …
 * up to MAX_RESPAWN_DELAY_MS, so a broken app does not fork-bomb the machine.
 */

/** The longest wait between two respawns of one slot. */
export const MAX_RESPAWN_DELAY_MS = 10_000;

/** A worker that lived this long was healthy: its slot's crash count starts again at 1. */
export const HEALTHY_UPTIME_MS = 10_000;

/** The delay before respawning a slot that crashed `crashes` times in a row (1 = first crash). */
export function respawnDelayMs(crashes: number): number {
  return crashes <= 1 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, 100 * 2 ** (crashes - 2));
}
