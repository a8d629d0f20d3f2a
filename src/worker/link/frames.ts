// Ours rather than node:http2 as the multiplexer: about half its CPU per relayed round trip (bench/link-vs-http2.ts).
import type net from 'node:net';
import { join } from 'node:path';
import type { ConnectionInfo } from '../../shared/connection-info.js';
import { chunkBytes, type OutChunk } from '../reuse/stand-in-socket.js';

/**
 * Worker-to-worker links for key.reuse "forward" (src/worker/reuse/forward.ts): one
 * UNIX socket from each worker to each other worker, carrying every relayed
 * request between the two as multiplexed streams, the way HTTP/2 carries
 * requests. A stream is one client connection of the front (the worker holding
 * it) as seen by the back (the worker its request belongs to): the back's app
 * sees one keep-alive connection per stream, with that client's address and key.
 *
 * Why one link and not one socket per client connection: on this machine a
 * write to a UNIX socket and the wake-up of the reader cost more than the
 * relay's own work (bench/README.md has the numbers): many messages written
 * together on one socket cost a fraction of one message per socket. Every
 * frame a turn of the event loop produces leaves in one writev at the end of
 * that turn.
 *
 * Frames: u8 type, u32 LE stream id, u32 LE payload length, payload.
 * - INFO   (front → back) JSON {@link LinkInfo}: the stream's client (opens the stream);
 * - DATA   (both ways)    request bytes to the back, response bytes to the front;
 * - END    (back → front) the back's server ended the stream (it closes after that response);
 * - DONE   (back → front) one response is complete (every byte of it sent before);
 * - RESET  (both ways)    the stream is gone (the client left, the back's server destroyed it);
 *                         from the back with the payload byte 1 ("refused", HTTP/2's
 *                         REFUSED_STREAM): nothing sent on it since its last response was
 *                         processed, so the request may go again on a new stream;
 * - CREDIT (both ways)    u32 LE: that many DATA bytes of the stream were passed on;
 * - KEY    (front → back) u8 key source, the key (latin1): the stream's next request is
 *                         another client's, everything else in its INFO unchanged (the
 *                         JSON of a whole INFO per relayed request cost measurable CPU).
 *
 * Stream ids only grow on a link (a back opens a stream only with an id above
 * every id it opened before), so a frame for a stream the back already closed
 * can never open a new one by mistake; a link whose ids run out is retired.
 *
 * Flow control per stream and direction, as HTTP/2 does it (RFC 9113 5.2):
 * at most {@link STREAM_WINDOW} DATA bytes are in flight without CREDIT, so a
 * client that reads slowly holds back its own stream only, never the link,
 * and no side buffers more than a window per stream.
 */

export const FRAME_INFO = 1;
export const FRAME_DATA = 2;
export const FRAME_END = 3;
export const FRAME_DONE = 4;
export const FRAME_RESET = 5;
export const FRAME_CREDIT = 6;
export const FRAME_KEY = 7;


export const HEADER_BYTES = 9;
/** The largest frame either side accepts; both ends are this code, so a bigger one is a bug. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** DATA bytes a stream may have in flight, each way, before the receiver's CREDIT. */
export const STREAM_WINDOW = 256 * 1024;

/** What the back needs to present a stream's client to its app. */
export interface LinkInfo {
  readonly info: ConnectionInfo;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly remoteFamily?: string | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/** The path a worker's link listener has (its pid's). */
export function linkPath(dir: string, pid: number): string {
  return join(dir, `${pid}.sock`);
}

/** A frame header. */
export function frameHeader(type: number, stream: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header[0] = type;
  header.writeUInt32LE(stream, 1);
  header.writeUInt32LE(length, 5);
  return header;
}

export const EMPTY = Buffer.alloc(0);

export function chunksBytes(chunks: readonly OutChunk[]): number {
  let total = 0;
  for (const chunk of chunks) total += chunkBytes(chunk);
  return total;
}

/**
 * Splits a byte stream into frames. Payloads are views of the chunks read
 * (no copy), except for a frame cut across reads.
 */
export class FrameReader {
  private pending: Buffer = EMPTY;

  constructor(private readonly onFrame: (type: number, stream: number, payload: Buffer) => void) {}

  /** Takes the next bytes; false when they are not frames (the link must close). */
  push(chunk: Buffer): boolean {
    let bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    for (;;) {
      if (bytes.length - at < HEADER_BYTES) break;
      const type = bytes[at] as number;
      const length = bytes.readUInt32LE(at + 5);
      if (type < FRAME_INFO || type > FRAME_KEY || length > MAX_FRAME_BYTES) {
        this.pending = EMPTY;
        return false;
      }
      if (bytes.length - at < HEADER_BYTES + length) break;
      const stream = bytes.readUInt32LE(at + 1);
      const payload = bytes.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length);
      at += HEADER_BYTES + length;
      this.onFrame(type, stream, payload);
    }
    if (at > 0) bytes = bytes.subarray(at);
    this.pending = bytes.length === 0 ? EMPTY : bytes;
    return true;
  }
}

/**
 * The frames of one link, written together once per turn of the event loop
 * (setImmediate: after every I/O callback of the turn, so everything one read
 * of many clients produced shares one writev).
 */
export class FrameWriter {
  private queued: OutChunk[] = [];
  private scheduled = false;
  private readonly flush = (): void => {
    this.scheduled = false;
    const queued = this.queued;
    this.queued = [];
    const socket = this.socket;
    if (socket.destroyed || queued.length === 0) return;
    socket.cork();
    for (const chunk of queued) {
      if (Buffer.isBuffer(chunk)) socket.write(chunk);
      else socket.write(chunk.text, chunk.encoding);
    }
    socket.uncork();
  };

  constructor(private readonly socket: net.Socket) {}

  frame(type: number, stream: number, payload: OutChunk | null): void {
    this.queued.push(frameHeader(type, stream, payload === null ? 0 : chunkBytes(payload)));
    if (payload !== null) this.queued.push(payload);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  credit(stream: number, bytes: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32LE(bytes, 0);
    this.frame(FRAME_CREDIT, stream, payload);
  }
}

/** The RESET payload of a stream the back refused (see FRAME_RESET). */
export const REFUSED = 1;
export const REFUSED_PAYLOAD = Buffer.from([REFUSED]);
