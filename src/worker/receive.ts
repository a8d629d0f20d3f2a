import { closeSync } from 'node:fs';
import type { Logger } from 'pino';
import { canOpenTcp, FdChannel, loadFdPass, MAX_MESSAGE_BYTES, openTcpHandle, type FdPassBinding } from '../shared/wire/fd-channel.js';
import type { ConnectionInfo } from '../shared/connection-info.js';
import { decodeBatch, encodeAcks, encodeBatch, KIND_CONNECTIONS, KIND_HANDBACK, type BatchEntry, type HandbackKey } from '../shared/wire/fd-batch.js';

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

/** What a worker does with each connection of a batch (the handle is a libuv TCP handle). */
export type OnBatchConnection = (entry: BatchEntry, handle: object) => void;

/** Opens a received descriptor as a libuv TCP handle, or returns null (the descriptor is then closed). */
export type OpenTcp = (fd: number) => object | null;

/**
 * The worker's side: takes each batch, opens its descriptors, acknowledges the
 * ones it holds (and refuses the ones it could not open) in one message, then
 * gives them to `onConnection`.
 */
export class HandoffReceiver {
  private readonly channel: FdChannel;

  constructor(
    private readonly binding: FdPassBinding,
    fd: number,
    private readonly openTcp: OpenTcp,
    private readonly onConnection: OnBatchConnection,
    onError: (error: Error) => void,
  ) {
    this.channel = new FdChannel(binding, fd, (payload, fds) => this.onBatch(payload, fds, onError), onError);
  }

  close(): void {
    this.channel.close();
  }

  /**
   * Hands a connection back to the master (key.reuse "handback"). False when
   * it cannot go this way (channel gone, bytes too large for one message):
   * use IPC. `done` gets null once the descriptor is in flight (this process
   * may close its copy), or the error.
   */
  handBack(fd: number, bytes: Buffer, info: ConnectionInfo, key: HandbackKey, done: (error: Error | null) => void): boolean {
    if (!this.channel.open || fd < 0 || bytes.length > MAX_MESSAGE_BYTES / 2) return false;
    this.channel.post(encodeBatch([{ id: 0, bytes, info, handback: key }], KIND_HANDBACK), Int32Array.of(fd), 1, done);
    return true;
  }

  private onBatch(payload: Buffer, fds: Int32Array, onError: (error: Error) => void): void {
    let entries: BatchEntry[];
    try {
      if (payload[0] !== KIND_CONNECTIONS) throw new Error(`unexpected message kind ${String(payload[0])}`);
      entries = decodeBatch(payload);
    } catch (error) {
      for (const fd of fds) this.binding.close(fd);
      onError(error as Error);
      return;
    }
    const acks: number[] = [];
    const handles: Array<object | null> = [];
    for (let index = 0; index < entries.length; index++) {
      const entry = entries[index] as BatchEntry;
      const handle = index < fds.length ? this.openTcp(fds[index] as number) : null;
      handles.push(handle);
      acks.push(handle === null ? -entry.id : entry.id);
    }
    // Descriptors without an entry (never sent by our master) are not kept.
    for (let index = entries.length; index < fds.length; index++) this.binding.close(fds[index] as number);
    if (acks.length > 0) this.channel.post(encodeAcks(acks), EMPTY_FDS, 0, null);
    for (let index = 0; index < entries.length; index++) {
      const handle = handles[index];
      if (handle) this.onConnection(entries[index] as BatchEntry, handle);
    }
  }
}

const EMPTY_FDS = new Int32Array(0);
