import { closeSync } from 'node:fs';
import type { Logger } from 'pino';
import { canOpenTcp, loadFdPass, openTcpHandle } from '../shared/wire/fd-channel.js';
import { HandoffReceiver, type OnBatchConnection } from '../shared/wire/fd-batch.js';

/**
 * Starts reading the fd channel the master gave this worker (its descriptor
 * number `fd`, from the start message). Returns the receiver when
 * connections can come that way; null when there is no channel, or this
 * worker cannot read it (then it closes its end and the master keeps using
 * Node's IPC).
 */
export function openFdChannel(fd: number | null, onConnection: OnBatchConnection, log: Logger): HandoffReceiver | null {
  if (fd === null || !Number.isInteger(fd) || fd < 0) return null;
  const binding = loadFdPass();
  if (binding === null || !canOpenTcp()) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    return null;
  }
  return new HandoffReceiver(binding, fd, (received) => openTcpHandle(binding, received), onConnection, (error) =>
    log.error({ err: error.message }, 'fd channel error'),
  );
}
