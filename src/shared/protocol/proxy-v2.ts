/**
 * PROXY protocol version 2, the binary header (HAProxy doc/proxy-protocol.txt
 * section 2.2):
 *
 *     sig[12] | ver_cmd | fam | len (u16 BE) | address block | TLVs
 *
 * Pure: no I/O, no timers, no logging. Incremental without state: each call
 * looks at the bytes so far and answers from the first 12, 13, 14 and 16 bytes
 * as soon as they arrive (bad signature, version, command, family, length),
 * then waits for exactly 16 + len bytes before decoding addresses and TLVs.
 *
 * Choices the spec leaves open, made here:
 * - LOCAL: "the receiver must accept this connection as valid and must use the
 *   real connection endpoints and discard the protocol block including the
 *   family which is ignored" (2.2). So after the 16 fixed bytes the whole
 *   block is skipped: no address, no TLV (nor CRC32C) is looked at and no
 *   minimum length applies; `source`/`destination` are null and `tlvs` is {}.
 *   The family and transport nibbles must still be valid values, because
 *   "other values ... must be rejected as invalid by receivers".
 * - PROXY with AF_UNSPEC or with transport UNSPEC: the address block has the
 *   family's size (0 for AF_UNSPEC) and is skipped ("the receiver should ignore
 *   address information"); `source`/`destination` are null; TLVs after it are
 *   parsed as usual.
 * - A known TLV type that appears twice is refused (`ERR_PROXY_V2_BAD_TLV`):
 *   with two CRC32C fields the checksum is ambiguous, and for the others one
 *   value would silently hide the other. Unknown and custom types may repeat.
 * - Unknown SSL sub-TLVs are skipped (their framing is still checked).
 */
import { NEED_MORE, parseError, type ParseResult } from './result.js';
import type { ErrorCode } from '../errors.js';
import type { ProxyEndpoint, ProxyHeader, ProxyTlvs } from './proxy-header.js';
import { formatIPv6Groups } from '../ip/address.js';
import { crc32cFinish, crc32cUpdate, CRC32C_INIT } from './crc32c.js';
import { isIPv4Text, isIPv6Text } from './proxy-v1.js';

/** The 12-byte v2 signature `\r\n\r\n\0\r\nQUIT\n` (proxy-protocol.txt 2.2). */
export const PROXY_V2_SIGNATURE: Buffer = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);

/** The fixed part: 12 signature + 1 ver_cmd + 1 fam + 2 len = 16 bytes. */
export const PROXY_V2_FIXED_BYTES = 16;

/**
 * The largest possible v2 header: "the length of the protocol header in bytes
 * is always exactly 16 + this value" (2.2) and the length is a uint16, so
 * 16 + 65535 = 65551 bytes. A caller may set a lower `maxBytes`.
 */
export const PROXY_V2_MAX_BYTES = PROXY_V2_FIXED_BYTES + 0xffff;

/** Options for {@link parseProxyV2}. */
export interface ProxyV2Options {
  /**
   * Refuse (`ERR_PROXY_V2_TOO_LONG`) a header whose announced total length
   * (16 + len) is larger than this, as soon as the length field is read.
   * Defaults to {@link PROXY_V2_MAX_BYTES}; a larger value changes nothing.
   */
  readonly maxBytes?: number;
}

/** Registered TLV types (proxy-protocol.txt 2.2) plus AWS's (ELB docs). */
export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
  /** AWS: PP2_TYPE_AWS; its first value byte is a subtype. */
  AWS: 0xea,
} as const;

/** Second-level types inside PP2_TYPE_SSL, and AWS's subtype. */
export const PP2_SUBTYPE = {
  SSL_VERSION: 0x21,
  SSL_CN: 0x22,
  SSL_CIPHER: 0x23,
  SSL_SIG_ALG: 0x24,
  SSL_KEY_ALG: 0x25,
  AWS_VPCE_ID: 0x01,
} as const;

/** "an opaque byte sequence of up to 128 bytes" (2.2.5). */
export const PP2_UNIQUE_ID_MAX_BYTES = 128;

const FAMILIES = ['UNKNOWN', 'TCP4', 'TCP6', 'UNIX'] as const;
const TRANSPORTS = ['UNSPEC', 'STREAM', 'DGRAM'] as const;
/** Address block sizes per family nibble: UNSPEC 0, INET 2*4+2*2, INET6 2*16+2*2, UNIX 2*108. */
const ADDRESS_BYTES = [0, 12, 36, 216] as const;
const UNIX_PATH_BYTES = 108;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type SslInfo = NonNullable<ProxyTlvs['ssl']>;

function at(buf: Uint8Array, i: number): number {
  return buf[i] as number;
}

function formatIPv4(buf: Buffer, offset: number): string {
  return `${at(buf, offset)}.${at(buf, offset + 1)}.${at(buf, offset + 2)}.${at(buf, offset + 3)}`;
}

/** Scratch groups for {@link formatIPv6} (the parser is synchronous). */
const groups = new Uint16Array(8);

/** Formats 16 bytes as Node formats `socket.remoteAddress` (src/shared/ip/address.ts, with the dotted IPv4 tail). */
export function formatIPv6(buf: Buffer, offset: number): string {
  for (let k = 0; k < 8; k++) groups[k] = buf.readUInt16BE(offset + 2 * k);
  return formatIPv6Groups(groups, true);
}

/**
 * A sun_path of 108 bytes as text: up to the first NUL. A Linux abstract
 * socket (first byte NUL) keeps Node's spelling, "\0" + name, with trailing
 * NUL padding dropped.
 */
function formatUnixPath(buf: Buffer, offset: number): string {
  const end = offset + UNIX_PATH_BYTES;
  if (at(buf, offset) === 0) {
    let last = end;
    while (last > offset + 1 && at(buf, last - 1) === 0) last--;
    return last === offset + 1 ? '' : '\0' + buf.toString('utf8', offset + 1, last);
  }
  const nul = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, nul >= 0 && nul < end ? nul : end);
}

function decodeAddresses(buf: Buffer, familyNibble: number): [ProxyEndpoint, ProxyEndpoint] {
  const base = PROXY_V2_FIXED_BYTES;
  if (familyNibble === 1) {
    return [
      { address: formatIPv4(buf, base), port: buf.readUInt16BE(base + 8) },
      { address: formatIPv4(buf, base + 4), port: buf.readUInt16BE(base + 10) },
    ];
  }
  if (familyNibble === 2) {
    return [
      { address: formatIPv6(buf, base), port: buf.readUInt16BE(base + 32) },
      { address: formatIPv6(buf, base + 16), port: buf.readUInt16BE(base + 34) },
    ];
  }
  return [
    { address: formatUnixPath(buf, base), port: 0 },
    { address: formatUnixPath(buf, base + UNIX_PATH_BYTES), port: 0 },
  ];
}

/** Parses the SSL TLV value `buf[start, end)`: client u8, verify u32, sub-TLVs. */
function parseSsl(buf: Buffer, start: number, end: number): SslInfo | ErrorCode {
  if (end - start < 5) return 'ERR_PROXY_V2_BAD_TLV';
  const ssl: Mutable<SslInfo> = { client: at(buf, start), verify: buf.readUInt32BE(start + 1) };
  const seen = new Set<number>();
  let pos = start + 5;
  while (pos < end) {
    if (end - pos < 3) return 'ERR_PROXY_V2_BAD_TLV';
    const type = at(buf, pos);
    const valueStart = pos + 3;
    const valueEnd = valueStart + buf.readUInt16BE(pos + 1);
    if (valueEnd > end) return 'ERR_PROXY_V2_BAD_TLV';
    pos = valueEnd;
    const key =
      type === PP2_SUBTYPE.SSL_VERSION ? 'version'
      : type === PP2_SUBTYPE.SSL_CN ? 'cn'
      : type === PP2_SUBTYPE.SSL_CIPHER ? 'cipher'
      : type === PP2_SUBTYPE.SSL_SIG_ALG ? 'sigAlg'
      : type === PP2_SUBTYPE.SSL_KEY_ALG ? 'keyAlg'
      : undefined;
    if (key === undefined) continue;
    if (seen.has(type)) return 'ERR_PROXY_V2_BAD_TLV';
    seen.add(type);
    ssl[key] = buf.toString('utf8', valueStart, valueEnd);
  }
  return ssl;
}

/**
 * Parses the TLVs in `buf[start, end)` of a complete header `buf[0, end)`,
 * verifying a CRC32C when one is present.
 */
function parseTlvs(buf: Buffer, start: number, end: number): ProxyTlvs | ErrorCode {
  const tlvs: Mutable<ProxyTlvs> = {};
  const seen = new Set<number>();
  let pos = start;
  while (pos < end) {
    if (end - pos < 3) return 'ERR_PROXY_V2_BAD_TLV';
    const type = at(buf, pos);
    const valueStart = pos + 3;
    const length = buf.readUInt16BE(pos + 1);
    const valueEnd = valueStart + length;
    if (valueEnd > end) return 'ERR_PROXY_V2_BAD_TLV';
    pos = valueEnd;
    if (type === PP2_TYPE.NOOP) continue;
    const isAwsVpce = type === PP2_TYPE.AWS && length >= 1 && at(buf, valueStart) === PP2_SUBTYPE.AWS_VPCE_ID;
    const known = type === PP2_TYPE.ALPN || type === PP2_TYPE.AUTHORITY || type === PP2_TYPE.CRC32C
      || type === PP2_TYPE.UNIQUE_ID || type === PP2_TYPE.SSL || type === PP2_TYPE.NETNS || isAwsVpce;
    if (!known) {
      // Copied, so the header holds no reference to the connection's buffer.
      (tlvs.other ??= []).push({ type, value: Buffer.from(buf.subarray(valueStart, valueEnd)) });
      continue;
    }
    if (seen.has(type)) return 'ERR_PROXY_V2_BAD_TLV';
    seen.add(type);
    switch (type) {
      case PP2_TYPE.ALPN:
        tlvs.alpn = buf.toString('utf8', valueStart, valueEnd);
        break;
      case PP2_TYPE.AUTHORITY:
        tlvs.authority = buf.toString('utf8', valueStart, valueEnd);
        break;
      case PP2_TYPE.CRC32C: {
        if (length !== 4) return 'ERR_PROXY_V2_BAD_TLV';
        // 2.2.3: the CRC of the whole header with the checksum field zeroed.
        let state = crc32cUpdate(CRC32C_INIT, buf, 0, valueStart);
        state = crc32cUpdate(state, ZERO_CHECKSUM);
        state = crc32cUpdate(state, buf, valueEnd, end);
        const expected = buf.readUInt32BE(valueStart);
        if (crc32cFinish(state) !== expected) return 'ERR_PROXY_V2_BAD_CRC';
        tlvs.crc32c = expected;
        break;
      }
      case PP2_TYPE.UNIQUE_ID:
        if (length > PP2_UNIQUE_ID_MAX_BYTES) return 'ERR_PROXY_V2_BAD_TLV';
        tlvs.uniqueId = Buffer.from(buf.subarray(valueStart, valueEnd));
        break;
      case PP2_TYPE.SSL: {
        const ssl = parseSsl(buf, valueStart, valueEnd);
        if (typeof ssl === 'string') return ssl;
        tlvs.ssl = ssl;
        break;
      }
      case PP2_TYPE.NETNS:
        tlvs.netns = buf.toString('utf8', valueStart, valueEnd);
        break;
      default: // PP2_TYPE.AWS with subtype PP2_SUBTYPE_AWS_VPCE_ID
        tlvs.awsVpceId = buf.toString('utf8', valueStart + 1, valueEnd);
    }
  }
  return tlvs;
}

const ZERO_CHECKSUM = new Uint8Array(4);

/**
 * Parses a PROXY v2 header at the start of `buf` (which starts at the
 * signature). `consumed` is 16 + len; the bytes after it are the
 * application's. See the module comment for LOCAL and UNSPEC. Never throws.
 */
export function parseProxyV2(buf: Buffer, options?: ProxyV2Options): ParseResult<ProxyHeader> {
  for (let i = 0; i < PROXY_V2_SIGNATURE.length; i++) {
    if (i >= buf.length) return NEED_MORE;
    if (at(buf, i) !== at(PROXY_V2_SIGNATURE, i)) return parseError('ERR_PROXY_V2_BAD_SIGNATURE');
  }
  if (buf.length < 13) return NEED_MORE;
  const versionCommand = at(buf, 12);
  // "it must always be sent as \x2 and the receiver must only accept this value"
  if (versionCommand >> 4 !== 2) return parseError('ERR_PROXY_V2_BAD_VERSION');
  const commandNibble = versionCommand & 0x0f;
  if (commandNibble > 1) return parseError('ERR_PROXY_V2_BAD_COMMAND');
  if (buf.length < 14) return NEED_MORE;
  const familyTransport = at(buf, 13);
  const familyNibble = familyTransport >> 4;
  const transportNibble = familyTransport & 0x0f;
  const family = FAMILIES[familyNibble];
  const transport = TRANSPORTS[transportNibble];
  const addressBytes = ADDRESS_BYTES[familyNibble];
  if (family === undefined || transport === undefined || addressBytes === undefined) {
    return parseError('ERR_PROXY_V2_BAD_FAMILY');
  }
  if (buf.length < PROXY_V2_FIXED_BYTES) return NEED_MORE;
  const total = PROXY_V2_FIXED_BYTES + buf.readUInt16BE(14);
  if (total > (options?.maxBytes ?? PROXY_V2_MAX_BYTES)) return parseError('ERR_PROXY_V2_TOO_LONG');
  const command = commandNibble === 0 ? 'LOCAL' : 'PROXY';
  if (command === 'PROXY' && total < PROXY_V2_FIXED_BYTES + addressBytes) return parseError('ERR_PROXY_V2_TOO_SHORT');
  if (buf.length < total) return NEED_MORE;

  if (command === 'LOCAL') {
    return {
      kind: 'done',
      value: { version: 2, command, family, transport, source: null, destination: null, tlvs: {} },
      consumed: total,
    };
  }
  const tlvs = parseTlvs(buf, PROXY_V2_FIXED_BYTES + addressBytes, total);
  if (typeof tlvs === 'string') return parseError(tlvs);
  const [source, destination] =
    family === 'UNKNOWN' || transport === 'UNSPEC' ? [null, null] : decodeAddresses(buf, familyNibble);
  return {
    kind: 'done',
    value: { version: 2, command, family, transport, source, destination, tlvs },
    consumed: total,
  };
}

// ---------------------------------------------------------------------------
// Encoder (for tests, round-trip properties and the project's test clients)
// ---------------------------------------------------------------------------

/** What {@link encodeProxyV2} needs: a {@link ProxyHeader} will do. */
export interface ProxyV2Input {
  /** Defaults to 'PROXY'. */
  readonly command?: ProxyHeader['command'];
  readonly family: ProxyHeader['family'];
  /** Defaults to 'STREAM' ('UNSPEC' for family 'UNKNOWN'). */
  readonly transport?: ProxyHeader['transport'];
  readonly source?: ProxyEndpoint | null;
  readonly destination?: ProxyEndpoint | null;
  readonly tlvs?: ProxyTlvs;
}

function ipv4Bytes(text: string): number[] {
  if (!isIPv4Text(text)) throw new TypeError(`PROXY v2: ${text} is not an IPv4 address`);
  return text.split('.').map(Number);
}

function ipv6Bytes(text: string): number[] {
  if (!isIPv6Text(text)) throw new TypeError(`PROXY v2: ${text} is not an IPv6 address`);
  let hex = text;
  if (text.includes('.')) {
    const cut = text.lastIndexOf(':') + 1;
    const [a, b, c, d] = ipv4Bytes(text.slice(cut)) as [number, number, number, number];
    hex = `${text.slice(0, cut)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = hex.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves[1] ? halves[1].split(':') : [];
  const zeros: string[] = halves.length === 2 ? new Array<string>(8 - head.length - tail.length).fill('0') : [];
  const bytes: number[] = [];
  for (const group of [...head, ...zeros, ...tail]) {
    const word = parseInt(group, 16);
    bytes.push(word >> 8, word & 0xff);
  }
  return bytes;
}

function portBytes(port: number): number[] {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`PROXY v2: port ${port} is not 0-65535`);
  return [port >> 8, port & 0xff];
}

function unixPathBytes(path: string): Buffer {
  const bytes = Buffer.alloc(UNIX_PATH_BYTES);
  const written = Buffer.from(path, 'utf8');
  if (written.length > UNIX_PATH_BYTES) throw new RangeError(`PROXY v2: UNIX path longer than ${UNIX_PATH_BYTES} bytes`);
  written.copy(bytes);
  return bytes;
}

function tlv(type: number, value: Uint8Array): Buffer {
  if (value.length > 0xffff) throw new RangeError(`PROXY v2: TLV 0x${type.toString(16)} longer than 65535 bytes`);
  const head = Buffer.from([type, value.length >> 8, value.length & 0xff]);
  return Buffer.concat([head, value]);
}

function encodeTlvs(tlvs: ProxyTlvs): { parts: Buffer[]; crcIndex: number } {
  const parts: Buffer[] = [];
  let crcIndex = -1;
  const text = (value: string): Buffer => Buffer.from(value, 'utf8');
  if (tlvs.alpn !== undefined) parts.push(tlv(PP2_TYPE.ALPN, text(tlvs.alpn)));
  if (tlvs.authority !== undefined) parts.push(tlv(PP2_TYPE.AUTHORITY, text(tlvs.authority)));
  if (tlvs.crc32c !== undefined) {
    crcIndex = parts.length;
    parts.push(tlv(PP2_TYPE.CRC32C, ZERO_CHECKSUM));
  }
  if (tlvs.uniqueId !== undefined) {
    if (tlvs.uniqueId.length > PP2_UNIQUE_ID_MAX_BYTES) throw new RangeError('PROXY v2: UNIQUE_ID longer than 128 bytes');
    parts.push(tlv(PP2_TYPE.UNIQUE_ID, tlvs.uniqueId));
  }
  if (tlvs.ssl !== undefined) {
    const { client, verify, version, cn, cipher, sigAlg, keyAlg } = tlvs.ssl;
    const head = Buffer.alloc(5);
    head.writeUInt8(client, 0);
    head.writeUInt32BE(verify, 1);
    const subs: Buffer[] = [head];
    if (version !== undefined) subs.push(tlv(PP2_SUBTYPE.SSL_VERSION, text(version)));
    if (cn !== undefined) subs.push(tlv(PP2_SUBTYPE.SSL_CN, text(cn)));
    if (cipher !== undefined) subs.push(tlv(PP2_SUBTYPE.SSL_CIPHER, text(cipher)));
    if (sigAlg !== undefined) subs.push(tlv(PP2_SUBTYPE.SSL_SIG_ALG, text(sigAlg)));
    if (keyAlg !== undefined) subs.push(tlv(PP2_SUBTYPE.SSL_KEY_ALG, text(keyAlg)));
    parts.push(tlv(PP2_TYPE.SSL, Buffer.concat(subs)));
  }
  if (tlvs.netns !== undefined) parts.push(tlv(PP2_TYPE.NETNS, text(tlvs.netns)));
  if (tlvs.awsVpceId !== undefined) {
    parts.push(tlv(PP2_TYPE.AWS, Buffer.concat([Buffer.from([PP2_SUBTYPE.AWS_VPCE_ID]), text(tlvs.awsVpceId)])));
  }
  for (const { type, value } of tlvs.other ?? []) parts.push(tlv(type, value));
  return { parts, crcIndex };
}

/**
 * Builds a PROXY v2 header. The address block always has the family's size
 * (zeros when LOCAL or transport UNSPEC come without endpoints). When
 * `tlvs.crc32c` is present its value is ignored and the correct checksum is
 * written. Known TLVs are written in type order, then `other` as given.
 * Throws for input no valid header can carry (programmer errors).
 */
export function encodeProxyV2(header: ProxyV2Input): Buffer {
  const command = header.command ?? 'PROXY';
  const familyNibble = FAMILIES.indexOf(header.family);
  const transport = header.transport ?? (header.family === 'UNKNOWN' ? 'UNSPEC' : 'STREAM');
  const transportNibble = TRANSPORTS.indexOf(transport);
  if (familyNibble < 0 || transportNibble < 0) throw new TypeError('PROXY v2: unknown family or transport');
  const { source, destination } = header;
  let addresses: Buffer;
  if (familyNibble === 0) {
    addresses = Buffer.alloc(0);
  } else if (!source || !destination) {
    if (command === 'PROXY' && transport !== 'UNSPEC') throw new TypeError(`PROXY v2 ${header.family} needs a source and a destination`);
    addresses = Buffer.alloc(ADDRESS_BYTES[familyNibble] as number);
  } else if (familyNibble === 1) {
    addresses = Buffer.from([...ipv4Bytes(source.address), ...ipv4Bytes(destination.address), ...portBytes(source.port), ...portBytes(destination.port)]);
  } else if (familyNibble === 2) {
    addresses = Buffer.from([...ipv6Bytes(source.address), ...ipv6Bytes(destination.address), ...portBytes(source.port), ...portBytes(destination.port)]);
  } else {
    addresses = Buffer.concat([unixPathBytes(source.address), unixPathBytes(destination.address)]);
  }
  const { parts, crcIndex } = encodeTlvs(header.tlvs ?? {});
  const length = addresses.length + parts.reduce((sum, part) => sum + part.length, 0);
  if (length > 0xffff) throw new RangeError(`PROXY v2: header body of ${length} bytes exceeds 65535`);
  const fixed = Buffer.from([0x20 | (command === 'PROXY' ? 1 : 0), (familyNibble << 4) | transportNibble, length >> 8, length & 0xff]);
  const out = Buffer.concat([PROXY_V2_SIGNATURE, fixed, addresses, ...parts]);
  if (crcIndex >= 0) {
    let valueOffset = PROXY_V2_FIXED_BYTES + addresses.length + 3;
    for (let k = 0; k < crcIndex; k++) valueOffset += (parts[k] as Buffer).length;
    out.writeUInt32BE(crc32cFinish(crc32cUpdate(CRC32C_INIT, out)), valueOffset);
  }
  return out;
}
