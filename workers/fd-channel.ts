import { closeSync } from 'node:fs';
import type { Logger } from 'pino';
import { loadFdPass } from '../src/pool/fd-channel.js';
import { HandoffReceiver, type OnBatchConnection, type OpenTcp } from '../src/pool/handoff-batch.js';

/** Node's tcp_wrap binding as this module uses it. */
interface TcpWrapBinding {
  readonly TCP: new (type: number) => { open(fd: number): number; close(): void };
  readonly constants: { readonly SOCKET: number };
}

function loadTcpWrap(): TcpWrapBinding | null {
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding('tcp_wrap') as Partial<TcpWrapBinding>;
    if (typeof binding.TCP === 'function' && typeof binding.constants?.SOCKET === 'number') return binding as TcpWrapBinding;
  } catch {
    // not available on this runtime
  }
  return null;
}

/**
 * Starts reading the fd channel the master gave this worker (its descriptor
 * number in `fdVariable`, STICKY_FD_CHANNEL). Returns true when connections
 * can come that way; false when there is no channel, or this worker cannot
 * read it (then it closes its end and the master keeps using Node's IPC).
 */
export function openFdChannel(fdVariable: string | undefined, onConnection: OnBatchConnection, log: Logger): boolean {
  if (fdVariable === undefined) return false;
  const fd = Number(fdVariable);
  if (!Number.isInteger(fd) || fd < 0) return false;
  const binding = loadFdPass();
  const tcpWrap = loadTcpWrap();
  if (binding === null || tcpWrap === null) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    return false;
  }
  // A received descriptor becomes a libuv TCP handle, as Node's cluster makes of the handles it passes.
  const openTcp: OpenTcp = (received) => {
    const handle = new tcpWrap.TCP(tcpWrap.constants.SOCKET);
    if (handle.open(received) === 0) return handle;
    handle.close();
    binding.close(received);
    return null;
  };
  new HandoffReceiver(binding, fd, openTcp, onConnection, (error) => log.error({ err: error.message }, 'fd channel error'));
  return true;
}
