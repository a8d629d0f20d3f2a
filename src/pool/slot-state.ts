/**
 * A worker slot's life, as a union with its allowed transitions in one place
 * (like Node's lib/internal/cluster/primary.js). `empty` is a slot with no
 * process (before the first fork, between a crash and its respawn).
 */
export type SlotState = 'empty' | 'starting' | 'ready' | 'draining' | 'dead';

const ALLOWED: Readonly<Record<SlotState, readonly SlotState[]>> = {
  empty: ['starting'],
  starting: ['ready', 'dead', 'draining'],
  ready: ['draining', 'dead'],
  draining: ['dead'],
  dead: ['empty', 'starting'],
};

/** True when a slot may go from `from` to `to`. */
export function canTransition(from: SlotState, to: SlotState): boolean {
  return ALLOWED[from].includes(to);
}
