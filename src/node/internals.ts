import { publicPathsTaken, type PublicPath } from './public-paths.js';
import { RESPONSE_RELAY } from './outgoing.js';
import { SOCKET_READS_STOP } from './socket.js';
import { DESCRIPTORS_OPEN, RAW_READS } from './tcp-handle.js';

/** Every group's verdict on this runtime (each module checks its own shape once, at load). */
export const INTERNALS_IN_USE: Readonly<Record<PublicPath, boolean>> = {
  'raw-accept': RAW_READS,
  'fd-open': DESCRIPTORS_OPEN,
  'response-relay': RESPONSE_RELAY,
  'stop-reading': SOCKET_READS_STOP,
};

/**
 * Null when the master can hand connections off without losing a byte here;
 * else why not. Peeking needs either raw reads, or a net.Socket whose reads
 * stop at once: with neither, bytes read while a socket is in flight to a
 * worker would be lost, and no public API stops libuv's reads.
 */
export function handoffImpossible(): string | null {
  if (INTERNALS_IN_USE['raw-accept'] || INTERNALS_IN_USE['stop-reading']) return null;
  return `Node ${process.version} lets the master neither read accepted handles raw nor stop a socket's reads at once; it cannot hand connections off without losing bytes`;
}

export { publicPathsTaken };
