import { existsSync } from 'node:fs';
import path from 'node:path';
import { DESCRIPTORS_OPEN, openDescriptor } from '../../node/tcp-handle.js';

/**
 * Batched descriptor passing between the master and a worker (native/fdpass.c).
 *
 * Node's IPC channel carries one handle per message and waits for the child's
 * NODE_HANDLE_ACK before the next: every hand-off is a JSON message, a
 * sendmsg(2) and two answers. Here each worker has a SOCK_SEQPACKET socket
 * pair of its own with the master; one message carries up to `MAX_FDS`
 * descriptors and their bytes, and one message of acknowledgements comes back
 * per batch. Where the addon is not built (not Linux, no compiler) the pool
 * uses Node's IPC as before.
 */

/** The addon's exports (native/fdpass.c). */
export interface FdPassBinding {
  socketpair(): [number, number];
  setNonBlocking(fd: number): number;
  send(fd: number, payload: Uint8Array, fds: Int32Array, count: number): number;
  recv(fd: number, buffer: Uint8Array, fdsOut: Int32Array): number;
  close(fd: number): number;
  readonly Poller: new (fd: number, callback: (status: number, events: number) => void) => NativePoller;
  readonly READABLE: number;
  readonly WRITABLE: number;
  readonly MAX_FDS: number;
}

interface NativePoller {
  start(events: number): number;
  stop(): number;
  close(): number;
  unref(): number;
}

/** Where the addon lands (node-gyp), looked up from dist/src/shared/wire or src/shared/wire. */
function addonPath(): string | null {
  for (const up of ['../../..', '../../../..']) {
    const candidate = path.join(__dirname, up, 'build', 'Release', 'fdpass.node');
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

let loaded: FdPassBinding | null | undefined;

/** The addon, or null where it is not built or does not load. */
export function loadFdPass(): FdPassBinding | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const file = process.platform === 'linux' ? addonPath() : null;
  if (file !== null) {
    try {
      // A native addon has no import form; its path is only known at run time.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require(file) as FdPassBinding;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** Whether received descriptors can be opened as TCP handles here (src/node/tcp-handle.ts). */
export function canOpenTcp(): boolean {
  return DESCRIPTORS_OPEN;
}

/**
 * Opens a received descriptor as a libuv TCP handle (what Node's cluster makes
 * of the handles it passes), or closes it and returns null.
 */
export function openTcpHandle(binding: FdPassBinding, fd: number): object | null {
  const handle = DESCRIPTORS_OPEN ? openDescriptor(fd) : null;
  if (handle === null) binding.close(fd);
  return handle;
}

const EAGAIN = -11;
/** The receive buffer: larger than any message a sender builds (MAX_MESSAGE_BYTES). */
const RECEIVE_BUFFER_BYTES = 256 * 1024;
/** The most a sender puts in one message (the socket's send buffer must hold it whole). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** A message waiting to be sent, and who to tell if it cannot be. */
interface Outgoing {
  readonly payload: Buffer;
  readonly fds: Int32Array;
  readonly count: number;
  /** Told once: null when the kernel took the message, else why it never will. */
  readonly onDone: ((error: Error | null) => void) | null;
}

/**
 * One end of a socket pair: sends messages (bytes plus descriptors) in order,
 * waiting for the socket to become writable when it is full, and hands every
 * message that arrives to `onMessage`. The descriptors given to `onMessage`
 * belong to the receiver (it must use or close each one).
 */
export class FdChannel {
  private readonly poller: NativePoller;
  private readonly queue: Outgoing[] = [];
  private readonly receiveBuffer: Buffer;
  private readonly receivedFds: Int32Array;
  private waitingWritable = false;
  private closedFlag = false;

  constructor(
    private readonly binding: FdPassBinding,
    private readonly fd: number,
    private readonly onMessage: (payload: Buffer, fds: Int32Array) => void,
    /** The channel broke (the other end is gone, or an unexpected error): nothing more is sent. */
    private readonly onBroken: (error: Error) => void,
  ) {
    this.receiveBuffer = Buffer.allocUnsafe(RECEIVE_BUFFER_BYTES);
    this.receivedFds = new Int32Array(binding.MAX_FDS + 1);
    binding.setNonBlocking(fd);
    this.poller = new binding.Poller(fd, (status, events) => this.onEvent(status, events));
    // The channel never keeps a process alive by itself (the IPC channel and the servers do).
    this.poller.unref();
    this.poller.start(binding.READABLE);
  }

  /** False once closed or broken. */
  get open(): boolean {
    return !this.closedFlag;
  }

  /**
   * Sends a message now, or queues it behind the ones waiting for room.
   * `onDone` gets null once the kernel took it (its descriptors are in flight:
   * the sender may close its copies), or the error if it can never be sent
   * (the channel broke or closed first).
   */
  post(payload: Buffer, fds: Int32Array, count: number, onDone: ((error: Error | null) => void) | null): void {
    if (this.closedFlag) {
      onDone?.(new Error('fd channel closed'));
      return;
    }
    this.queue.push({ payload, fds, count, onDone });
    if (!this.waitingWritable) this.flush();
  }

  /** Closes the socket; queued messages fail. Idempotent. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.poller.close();
    this.binding.close(this.fd);
    this.failQueued(new Error('fd channel closed'));
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const next = this.queue[0] as Outgoing;
      const result = this.binding.send(this.fd, next.payload, next.fds, next.count);
      if (result === EAGAIN) {
        this.waitingWritable = true;
        this.poller.start(this.binding.READABLE | this.binding.WRITABLE);
        return;
      }
      this.queue.shift();
      if (result < 0) {
        this.broken(new Error(`fd channel send failed (errno ${-result})`), next);
        return;
      }
      next.onDone?.(null);
    }
    if (this.waitingWritable) {
      this.waitingWritable = false;
      this.poller.start(this.binding.READABLE);
    }
  }

  private onEvent(status: number, events: number): void {
    if (this.closedFlag) return;
    if (status < 0) {
      this.broken(new Error(`fd channel poll failed (errno ${-status})`), null);
      return;
    }
    if ((events & this.binding.READABLE) !== 0) this.receive();
    if (!this.closedFlag && (events & this.binding.WRITABLE) !== 0) this.flush();
  }

  private receive(): void {
    const fds = this.receivedFds;
    for (;;) {
      const result = this.binding.recv(this.fd, this.receiveBuffer, fds);
      if (result === EAGAIN) return;
      if (result <= 0) {
        // 0: the other end closed; anything else: a message we cannot trust.
        this.broken(new Error(result === 0 ? 'fd channel closed by peer' : `fd channel receive failed (errno ${-result})`), null);
        return;
      }
      const count = fds[0] as number;
      // A copy: the receive buffer is reused for the next message.
      this.onMessage(Buffer.from(this.receiveBuffer.subarray(0, result)), fds.slice(1, 1 + count));
      if (this.closedFlag) return;
    }
  }

  private broken(error: Error, failed: Outgoing | null): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.poller.close();
    this.binding.close(this.fd);
    failed?.onDone?.(error);
    this.failQueued(error);
    this.onBroken(error);
  }

  private failQueued(error: Error): void {
    for (const message of this.queue.splice(0)) message.onDone?.(error);
  }
}
