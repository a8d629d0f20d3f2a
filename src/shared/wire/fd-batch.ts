import type { ConnectionInfo } from '../connection-info.js';
import { FdChannel, MAX_MESSAGE_BYTES, openTcpHandle, type FdPassBinding } from './fd-channel.js';
import { infoFromWire, infoToWire, type WireConnectionInfo } from './connection.js';

/**
 * The hand-off protocol on a worker's fd channel (fd-channel.ts). Every
 * message starts with a kind byte.
 *
 * Connections, master → worker (kind 1), one message per batch, the
 * descriptors in SCM_RIGHTS in the same order as the entries:
 *
 *     u8      1
 *     u32 LE  length of the JSON that follows
 *     JSON    [[id, byteCount, info], ...]   (info as on the IPC channel, wire.ts)
 *     bytes   every entry's bytes, one after the other
 *
 * Acks, worker → master (kind 2), one message per batch received: int32 LE
 * ids, positive for a connection the worker now holds (the master closes its
 * copy), negative for one it could not take (its descriptor did not arrive or
 * could not be opened: the master, still holding its copy, routes it again).
 *
 * Hand-back, worker → master (kind 3, key.reuse "handback"): the same layout
 * as kind 1 with one entry, its id 0 and a fourth element (the key the worker
 * derived for the next request), and the connection's descriptor.
 */

export const KIND_CONNECTIONS = 1;
export const KIND_ACKS = 2;
export const KIND_HANDBACK = 3;

/** Where a handed-back connection's next request belongs (the worker derived it). */
export interface HandbackKey {
  readonly key: string;
  readonly keySource: ConnectionInfo['keySource'];
  /** The slot a valid sticky cookie on the next request names. */
  readonly stickySlot?: number;
}

/** One connection in a batch. */
export interface BatchEntry {
  readonly id: number;
  readonly bytes: Buffer;
  readonly info: ConnectionInfo;
  /** Set on a hand-back. */
  readonly handback?: HandbackKey;
}

/** A message from the channel, decoded. */
export type ChannelMessage =
  | { readonly kind: typeof KIND_CONNECTIONS | typeof KIND_HANDBACK; readonly entries: BatchEntry[] }
  | { readonly kind: typeof KIND_ACKS; readonly ids: number[] };

/** What an entry adds to a message besides its bytes: its JSON (id, count, info), roughly. */
const ENTRY_OVERHEAD = 256;

/** Encodes a batch of connections, or a hand-back (the descriptors travel beside it). */
export function encodeBatch(entries: readonly BatchEntry[], kind: typeof KIND_CONNECTIONS | typeof KIND_HANDBACK = KIND_CONNECTIONS): Buffer {
  const meta: Array<[number, number, WireConnectionInfo] | [number, number, WireConnectionInfo, HandbackKey]> = [];
  let bytesLength = 0;
  for (const entry of entries) {
    const item: [number, number, WireConnectionInfo] = [entry.id, entry.bytes.length, infoToWire(entry.info)];
    meta.push(entry.handback === undefined ? item : [...item, entry.handback]);
    bytesLength += entry.bytes.length;
  }
  const json = JSON.stringify(meta);
  const jsonLength = Buffer.byteLength(json);
  const payload = Buffer.allocUnsafe(5 + jsonLength + bytesLength);
  payload[0] = kind;
  payload.writeUInt32LE(jsonLength, 1);
  payload.write(json, 5, 'utf8');
  let offset = 5 + jsonLength;
  for (const entry of entries) {
    payload.set(entry.bytes, offset);
    offset += entry.bytes.length;
  }
  return payload;
}

/** Decodes any message; throws on anything that is not one (a bug, never client input). */
export function decodeMessage(payload: Buffer): ChannelMessage {
  const kind = payload[0];
  if (kind === KIND_ACKS) return { kind, ids: decodeAcks(payload) };
  if (kind === KIND_CONNECTIONS || kind === KIND_HANDBACK) return { kind, entries: decodeBatch(payload) };
  throw new Error(`unknown message kind ${String(kind)}`);
}

/** Decodes a batch (kind 1 or 3); throws on anything that is not one. */
export function decodeBatch(payload: Buffer): BatchEntry[] {
  if (payload.length < 5) throw new Error('batch too short');
  const jsonLength = payload.readUInt32LE(1);
  if (jsonLength > payload.length - 5) throw new Error('batch header overruns the message');
  const meta: unknown = JSON.parse(payload.toString('utf8', 5, 5 + jsonLength));
  if (!Array.isArray(meta)) throw new Error('batch header is not a list');
  const entries: BatchEntry[] = [];
  let offset = 5 + jsonLength;
  for (const item of meta as unknown[]) {
    if (!Array.isArray(item) || !Number.isInteger(item[0]) || !Number.isInteger(item[1]) || item[1] < 0 || typeof item[2] !== 'object' || item[2] === null) {
      throw new Error('malformed batch entry');
    }
    const handback = item[3] as HandbackKey | undefined;
    if (handback !== undefined && (typeof handback !== 'object' || handback === null || typeof handback.key !== 'string')) throw new Error('malformed hand-back key');
    const count = item[1] as number;
    if (offset + count > payload.length) throw new Error('batch entry overruns the message');
    // A copy of its own: the payload is one allocation for the whole batch.
    const bytes = Buffer.from(payload.subarray(offset, offset + count));
    const info = infoFromWire(item[2] as WireConnectionInfo);
    entries.push(handback === undefined ? { id: item[0] as number, bytes, info } : { id: item[0] as number, bytes, info, handback });
    offset += count;
  }
  if (offset !== payload.length) throw new Error('batch has trailing bytes');
  return entries;
}

/** Encodes acknowledgements: positive ids taken, negative ids refused. */
export function encodeAcks(ids: readonly number[]): Buffer {
  const payload = Buffer.allocUnsafe(1 + ids.length * 4);
  payload[0] = KIND_ACKS;
  for (let index = 0; index < ids.length; index++) payload.writeInt32LE(ids[index] as number, 1 + index * 4);
  return payload;
}

/** Decodes acknowledgements (a trailing partial id is ignored). */
export function decodeAcks(payload: Buffer): number[] {
  const ids: number[] = [];
  for (let offset = 1; offset + 4 <= payload.length; offset += 4) ids.push(payload.readInt32LE(offset));
  return ids;
}

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

/** A handed-back connection nobody takes (no hand-back hook, or a message of the wrong kind): closed. */
function closeHandle(_entry: BatchEntry, handle: object): void {
  (handle as { close(): void }).close();
}

function ignoreError(): void {
  // The default: the owner did not ask to hear about garbled messages.
}
