import type { ConnectionInfo } from '../../shared/connection-info.js';
import { FdChannel, MAX_MESSAGE_BYTES, openTcpHandle, type FdPassBinding } from '../../shared/wire/fd-channel.js';
import { decodeMessage, encodeBatch, ENTRY_OVERHEAD, KIND_ACKS, KIND_HANDBACK, type BatchEntry, type ChannelMessage, type HandbackKey } from '../../shared/wire/fd-batch.js';

/** A connection waiting in the master for the next batch. */
interface Queued extends BatchEntry {
  readonly fd: number;
  readonly done: (error: Error | null) => void;
}

/** What a HandoffSender reports besides acks (src/master/supervisor/liveness.ts counts it). */
export interface HandoffProgress {
  delivered(count: number): void;
  refused(): void;
}

const NO_PROGRESS: HandoffProgress = { delivered: () => {}, refused: () => {} };

/**
 * The master's side of one worker's fd channel: connections decided in the
 * same turn of the event loop go out together (flushed on `setImmediate`),
 * at most `MAX_FDS` descriptors and {@link MAX_MESSAGE_BYTES} per message.
 * The master keeps its own copy of every descriptor until the worker's ack.
 */
export class HandoffSender {
  private readonly channel: FdChannel;
  private queued: Queued[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  /** Sent and not yet acknowledged: told if the worker refuses. */
  private readonly unacked = new Map<number, (error: Error | null) => void>();

  constructor(
    private readonly binding: FdPassBinding,
    fd: number,
    private readonly onAck: (id: number) => void,
    /** A connection handed back (key.reuse "handback"): its handle is the master's now. */
    private readonly onHandback: (entry: BatchEntry & { readonly handback: HandbackKey }, handle: object) => void = closeHandle,
    private readonly onError: (error: Error) => void = ignoreError,
    /** Progress for the worker's liveness: batches the kernel took, and refusals (answers that are not acks). */
    private readonly progress: HandoffProgress = NO_PROGRESS,
  ) {
    this.channel = new FdChannel(binding, fd, (payload, fds) => this.onMessage(payload, fds), () => this.failQueued(new Error('fd channel broke')));
  }

  /** False once the channel is closed or broke (the pool falls back to IPC). */
  get open(): boolean {
    return this.channel.open;
  }

  /**
   * Queues a connection for the next batch. False when it cannot go this way
   * (channel gone, bytes too large for one message): the caller uses IPC.
   * `done` gets an error if the connection did not reach the worker.
   */
  enqueue(id: number, fd: number, bytes: Buffer, info: ConnectionInfo, done: (error: Error | null) => void): boolean {
    if (!this.channel.open || fd < 0 || bytes.length > MAX_MESSAGE_BYTES / 2) return false;
    this.queued.push({ id, fd, bytes, info, done });
    this.queuedBytes += bytes.length + ENTRY_OVERHEAD;
    if (this.queued.length >= this.binding.MAX_FDS || this.queuedBytes >= MAX_MESSAGE_BYTES / 2) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  /** Sends what is queued now (before an IPC message that should not overtake it). */
  flush(): void {
    this.flushScheduled = false;
    if (this.queued.length === 0) return;
    const batch = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    const fds = new Int32Array(batch.length);
    for (let index = 0; index < batch.length; index++) {
      const entry = batch[index] as Queued;
      fds[index] = entry.fd;
      this.unacked.set(entry.id, entry.done);
    }
    this.channel.post(encodeBatch(batch), fds, batch.length, (error) => {
      // Sent: each entry waits for the worker's ack (or refusal).
      if (error === null) {
        this.progress.delivered(batch.length);
        return;
      }
      for (const entry of batch) {
        if (this.unacked.delete(entry.id)) entry.done(error);
      }
    });
  }

  /** Closes the channel: queued connections fail (sent ones stay the pool's until the worker's exit). */
  close(): void {
    this.channel.close();
    this.failQueued(new Error('fd channel closed'));
  }

  private onMessage(payload: Buffer, fds: Int32Array): void {
    let message: ChannelMessage;
    try {
      message = decodeMessage(payload);
    } catch (error) {
      for (const fd of fds) this.binding.close(fd);
      this.onError(error as Error);
      return;
    }
    if (message.kind === KIND_ACKS) {
      for (const fd of fds) this.binding.close(fd);
      this.onAcks(message.ids);
      return;
    }
    for (let index = 0; index < message.entries.length; index++) {
      const entry = message.entries[index] as BatchEntry;
      // Only hand-backs come this way; a descriptor the kernel could not install is a connection lost.
      const handle = index < fds.length ? openTcpHandle(this.binding, fds[index] as number) : null;
      if (handle === null) continue;
      if (message.kind === KIND_HANDBACK && entry.handback !== undefined) this.onHandback(entry as BatchEntry & { readonly handback: HandbackKey }, handle);
      else closeHandle(entry, handle);
    }
    for (let index = message.entries.length; index < fds.length; index++) this.binding.close(fds[index] as number);
  }

  private onAcks(ids: readonly number[]): void {
    for (const id of ids) {
      if (id > 0) {
        if (this.unacked.delete(id)) this.onAck(id);
        continue;
      }
      const done = this.unacked.get(-id);
      if (done === undefined) continue;
      this.unacked.delete(-id);
      this.progress.refused();
      done(new Error('the worker could not take the descriptor'));
    }
  }

  private failQueued(error: Error): void {
    const queued = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    for (const entry of queued) entry.done(error);
  }
}

/** A handed-back connection nobody takes (no hand-back hook, or a message of the wrong kind): closed. */
function closeHandle(_entry: BatchEntry, handle: object): void {
  (handle as { close(): void }).close();
}

function ignoreError(): void {
  // The default: the owner did not ask to hear about garbled messages.
}
