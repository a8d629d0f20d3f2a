/**
 * A worker's life, as a union with its allowed transitions in one place (like
 * Node's lib/internal/cluster/primary.js): starting → ready → draining → dead.
 * `empty` is what `GET /workers` shows for a slot with no process (between a
 * crash and its respawn); a respawn is a new process in the same slot, so a
 * dead process never comes back and `dead` allows nothing. A ready worker
 * that stops answering (a blocked event loop, SIGSTOP) is `unresponsive`
 * until it answers again (src/master/supervisor/liveness.ts).
 */
export type SlotState = 'empty' | 'starting' | 'ready' | 'unresponsive' | 'draining' | 'dead';

const ALLOWED: Readonly<Record<SlotState, readonly SlotState[]>> = {
  empty: ['starting'],
  // A starting worker can be retired before it is ready (scale-down, shutdown, a superseded replacement).
  starting: ['ready', 'draining', 'dead'],
  ready: ['unresponsive', 'draining', 'dead'],
  unresponsive: ['ready', 'draining', 'dead'],
  draining: ['dead'],
  dead: [],
};

/** True when a worker may go from `from` to `to`. */
export function canTransition(from: SlotState, to: SlotState): boolean {
  return ALLOWED[from].includes(to);
}

/** True when the master may route new connections to a worker in this state. */
export function takesConnections(state: SlotState): boolean {
  return state === 'ready';
}
