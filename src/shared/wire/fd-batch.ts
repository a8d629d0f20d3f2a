import type { ConnectionInfo } from '../connection-info.js';
import { infoFromWire, infoToWire, type WireConnectionInfo } from './connection.js';

/**
 * The hand-off protocol on a worker's fd channel (fd-channel.ts): the message
 * layout, both ways. The master's end is src/master/transport/handoff-sender.ts,
 * the worker's src/worker/receive.ts. Every message starts with a kind byte.
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
export const ENTRY_OVERHEAD = 256;

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
