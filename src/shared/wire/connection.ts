import type { ConnectionInfo } from '../connection-info.js';
import type { ProxyTlvs } from '../protocol/proxy.js';

/**
 * How bytes cross the JSON IPC channel between the master and its workers.
 *
 * The channel uses Node's default JSON serialization, not 'advanced': on the
 * hand-off path the V8 serializer cost the master connections per second
 * (bench/README.md). JSON would turn
 * a Buffer into `{"type":"Buffer","data":[...]}`, so bytes travel as latin1
 * strings instead: one character per byte, code points 0-255, an exact round
 * trip for any bytes, and no size overhead for the ASCII of an HTTP head.
 */

/** Bytes as the channel carries them. */
export type WireBytes = string;

/** Encodes bytes for the channel. */
export function bytesToWire(bytes: Uint8Array): WireBytes {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Decodes bytes from the channel (anything that is not a string: no bytes). */
export function bytesFromWire(wire: unknown): Buffer {
  return typeof wire === 'string' ? Buffer.from(wire, 'latin1') : Buffer.alloc(0);
}

/** The PROXY TLVs with their byte fields as wire strings. */
export type WireTlvs = Omit<ProxyTlvs, 'uniqueId' | 'other'> & {
  uniqueId?: WireBytes;
  other?: Array<{ type: number; value: WireBytes }>;
};

/** ConnectionInfo as the channel carries it. */
export type WireConnectionInfo = Omit<ConnectionInfo, 'proxy'> & {
  readonly proxy: (Omit<NonNullable<ConnectionInfo['proxy']>, 'tlvs'> & { readonly tlvs: WireTlvs }) | null;
};

/** Encodes a ConnectionInfo (only TLVs carry bytes; without them it goes as is). */
export function infoToWire(info: ConnectionInfo): WireConnectionInfo {
  const tlvs = info.proxy?.tlvs;
  if (!info.proxy || !tlvs || (tlvs.uniqueId === undefined && tlvs.other === undefined)) return info as WireConnectionInfo;
  const { uniqueId, other, ...rest } = tlvs;
  const wireTlvs: WireTlvs = { ...rest };
  if (uniqueId !== undefined) wireTlvs.uniqueId = bytesToWire(uniqueId);
  if (other !== undefined) wireTlvs.other = other.map((tlv) => ({ type: tlv.type, value: bytesToWire(tlv.value) }));
  return { ...info, proxy: { ...info.proxy, tlvs: wireTlvs } };
}

/** Decodes a ConnectionInfo: TLV bytes become Buffers again. */
export function infoFromWire(wire: WireConnectionInfo): ConnectionInfo {
  const tlvs = wire.proxy?.tlvs;
  if (!wire.proxy || !tlvs || (tlvs.uniqueId === undefined && tlvs.other === undefined)) return wire as ConnectionInfo;
  const { uniqueId, other, ...rest } = tlvs;
  const decoded: ProxyTlvs = { ...rest };
  if (uniqueId !== undefined) decoded.uniqueId = bytesFromWire(uniqueId);
  if (other !== undefined) decoded.other = other.map((tlv) => ({ type: tlv.type, value: bytesFromWire(tlv.value) }));
  return { ...wire, proxy: { ...wire.proxy, tlvs: decoded } };
}
