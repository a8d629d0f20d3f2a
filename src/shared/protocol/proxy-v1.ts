/**
 * PROXY protocol version 1, the human-readable line (HAProxy
 * doc/proxy-protocol.txt section 2.1):
 *
 *     "PROXY" SP ("TCP4" | "TCP6") SP srcaddr SP dstaddr SP srcport SP dstport CRLF
 *     "PROXY" SP "UNKNOWN" [anything but CR/LF] CRLF
 *
 * Pure: no I/O, no timers, no logging. Incremental without state: the caller
 * calls again with the longer buffer, the line is re-scanned from the start
 * (it is at most 107 bytes). Each answer depends only on the bytes seen so far,
 * and the scan stops at the first byte that no valid line could contain, so a
 * header split across TCP segments gives the same result as a whole one.
 */
import type { ErrorCode } from '../errors.js';
import { NEED_MORE, parseError, type ParseResult } from './result.js';
import type { ProxyEndpoint, ProxyHeader } from './proxy-header.js';
import { COLON, CR, DIGIT_0, DOT, LF, SP, isDigit } from './ascii.js';

/**
 * The longest valid v1 line, CRLF included (proxy-protocol.txt 2.1, "worst case"):
 * `"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"`
 * => 5 + 1 + 7 + 1 + 39 + 1 + 39 + 1 + 5 + 1 + 5 + 2 = 107 chars.
 * A line with no CRLF within its first 107 bytes is `ERR_PROXY_V1_TOO_LONG`.
 */
export const PROXY_V1_MAX_BYTES = 107;

/** The six bytes every v1 header starts with: "PROXY" and exactly one space. */
export const PROXY_V1_PREFIX: Buffer = Buffer.from('PROXY ', 'latin1');

/**
 * How far a piece of text is from being a valid token: `'invalid'` (no
 * continuation can make it valid), `'prefix'` (not valid yet, but some
 * continuation would be) or `'complete'` (valid as it stands; it may still be
 * the prefix of a longer valid token).
 */
export type Viability = 'invalid' | 'prefix' | 'complete';

const FAMILY_TOKENS = [
  { name: 'TCP4', bytes: Buffer.from('TCP4', 'latin1') },
  { name: 'TCP6', bytes: Buffer.from('TCP6', 'latin1') },
  { name: 'UNKNOWN', bytes: Buffer.from('UNKNOWN', 'latin1') },
] as const;
type V1Family = (typeof FAMILY_TOKENS)[number]['name'];

function isHexDigit(byte: number): boolean {
  return isDigit(byte) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46);
}

/** Reads byte `i`, which the caller has checked to be within the buffer. */
function at(buf: Uint8Array, i: number): number {
  return buf[i] as number;
}

/**
 * Classifies `buf[start, end)` as an IPv4 dotted quad as proxy-protocol.txt 2.1
 * asks: exactly four decimal integers 0-255 separated by single dots, no
 * leading zeros ("0" itself is fine), nothing else.
 */
export function classifyIPv4(buf: Uint8Array, start: number, end: number): Viability {
  let dots = 0;
  let digits = 0;
  let octet = 0;
  for (let i = start; i < end; i++) {
    const byte = at(buf, i);
    if (isDigit(byte)) {
      // A second digit after a leading "0" is a leading zero (octal confusion).
      if (digits > 0 && octet === 0) return 'invalid';
      octet = octet * 10 + (byte - DIGIT_0);
      if (octet > 255) return 'invalid';
      digits++;
    } else if (byte === DOT) {
      if (digits === 0 || dots === 3) return 'invalid';
      dots++;
      digits = 0;
      octet = 0;
    } else {
      return 'invalid';
    }
  }
  return dots === 3 && digits > 0 ? 'complete' : 'prefix';
}

/**
 * Classifies `buf[start, end)` as an IPv6 address in the text forms of
 * RFC 4291 section 2.2: eight groups of 1-4 hex digits (either case), at most
 * one "::" standing for one or more zero groups, and optionally the last 32
 * bits as a strict dotted quad. No zone id ("%eth0"), no brackets.
 *
 * One pass, counting the completed groups so that a line is rejected at the
 * first character that leaves no room for a valid address.
 */
export function classifyIPv6(buf: Uint8Array, start: number, end: number): Viability {
  let groups = 0; // groups already followed by their ':' separator
  let compressed = false; // a "::" has been seen
  let justCompressed = false; // the last thing read was that "::"
  let i = start;
  if (i < end && at(buf, i) === COLON) {
    if (i + 1 === end) return 'prefix';
    if (at(buf, i + 1) !== COLON) return 'invalid';
    compressed = true;
    justCompressed = true;
    i += 2;
  }
  for (;;) {
    const tokenStart = i;
    let decimal = true;
    while (i < end && isHexDigit(at(buf, i))) {
      if (!isDigit(at(buf, i))) decimal = false;
      i++;
      // Longer than an h16 and too long for a dotted-quad octet either.
      if (i - tokenStart > 4) return 'invalid';
    }
    const digits = i - tokenStart;
    if (i === end) {
      if (digits === 0) return justCompressed ? 'complete' : 'prefix';
      const total = groups + 1;
      // With "::" at most 7 explicit groups (it stands for at least one).
      if (compressed) return total <= 7 ? 'complete' : 'invalid';
      return total === 8 ? 'complete' : 'prefix';
    }
    const byte = at(buf, i);
    if (byte === DOT) {
      // The embedded IPv4 takes the last two groups' room and ends the address.
      if (digits === 0 || !decimal) return 'invalid';
      if (compressed ? groups > 5 : groups !== 6) return 'invalid';
      return classifyIPv4(buf, tokenStart, end);
    }
    if (byte !== COLON) return 'invalid';
    i++;
    if (digits === 0) {
      // ':' straight after a separator: a "::" in the middle (or ":::").
      if (compressed) return 'invalid';
      compressed = true;
      justCompressed = true;
      continue;
    }
    groups++;
    justCompressed = false;
    // Another group must follow this ':' (or it becomes "::" when not yet compressed).
    if (groups > (compressed ? 6 : 7)) return 'invalid';
  }
}

/** True when `text` is a strict IPv4 dotted quad (see {@link classifyIPv4}). */
export function isIPv4Text(text: string): boolean {
  // UTF-8, not latin1: a non-ASCII character must not truncate into an ASCII one.
  const bytes = Buffer.from(text, 'utf8');
  return classifyIPv4(bytes, 0, bytes.length) === 'complete';
}

/** True when `text` is an RFC 4291 IPv6 text address (see {@link classifyIPv6}). */
export function isIPv6Text(text: string): boolean {
  const bytes = Buffer.from(text, 'utf8');
  return classifyIPv6(bytes, 0, bytes.length) === 'complete';
}

/** Classifies a decimal port: 0-65535, digits only, no sign, no leading zeros. */
function classifyPort(buf: Uint8Array, start: number, end: number): Viability {
  let value = 0;
  for (let i = start; i < end; i++) {
    const byte = at(buf, i);
    if (!isDigit(byte)) return 'invalid';
    if (i > start && value === 0) return 'invalid';
    value = value * 10 + (byte - DIGIT_0);
    if (value > 65535) return 'invalid';
  }
  return end > start ? 'complete' : 'prefix';
}

function readPort(buf: Uint8Array, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + (at(buf, i) - DIGIT_0);
  return value;
}

/** First index in [from, limit) holding SP, CR or LF; `limit` if none. */
function tokenEnd(buf: Uint8Array, from: number, limit: number): number {
  let i = from;
  while (i < limit) {
    const byte = at(buf, i);
    if (byte === SP || byte === CR || byte === LF) break;
    i++;
  }
  return i;
}

/** Out of bytes before the line ended: wait, unless the 107-byte limit is reached. */
function incomplete(buf: Uint8Array): ParseResult<ProxyHeader> {
  return buf.length >= PROXY_V1_MAX_BYTES ? parseError('ERR_PROXY_V1_TOO_LONG') : NEED_MORE;
}

/** Expects CR at `i` then LF; the header is done just after the LF. */
function lineEnd(buf: Uint8Array, i: number, limit: number, header: ProxyHeader): ParseResult<ProxyHeader> {
  if (at(buf, i) !== CR) return parseError('ERR_PROXY_V1_BAD_SYNTAX');
  // A CR at byte 107 is already too long: its LF would be byte 108.
  if (i + 1 >= limit) return incomplete(buf);
  // "The receiver must not tolerate a single CR or LF character to end the line."
  if (at(buf, i + 1) !== LF) return parseError('ERR_PROXY_V1_BAD_SYNTAX');
  return { kind: 'done', value: header, consumed: i + 2 };
}

const UNKNOWN_HEADER: ProxyHeader = Object.freeze({
  version: 1,
  command: 'PROXY',
  family: 'UNKNOWN',
  transport: 'UNSPEC',
  source: null,
  destination: null,
  tlvs: Object.freeze({}),
});

/**
 * Parses a PROXY v1 line at the start of `buf` (which starts at "PROXY ").
 * `consumed` is the line length including CRLF; the bytes after it are the
 * application's. For "UNKNOWN" the rest of the line is ignored, as the spec
 * asks, and source/destination are null. Never throws.
 */
export function parseProxyV1(buf: Buffer): ParseResult<ProxyHeader> {
  const limit = Math.min(buf.length, PROXY_V1_MAX_BYTES);
  for (let i = 0; i < PROXY_V1_PREFIX.length; i++) {
    if (i >= limit) return NEED_MORE;
    if (at(buf, i) !== at(PROXY_V1_PREFIX, i)) return parseError('ERR_PROXY_V1_BAD_SYNTAX');
  }

  const familyStart = PROXY_V1_PREFIX.length;
  const familyEnd = tokenEnd(buf, familyStart, limit);
  const familyLength = familyEnd - familyStart;
  let family: V1Family | undefined;
  let familyPrefix = false;
  for (const token of FAMILY_TOKENS) {
    if (familyLength > token.bytes.length) continue;
    if (buf.compare(token.bytes, 0, familyLength, familyStart, familyEnd) !== 0) continue;
    if (familyLength === token.bytes.length) family = token.name;
    else familyPrefix = true;
  }
  if (familyEnd === limit) return family !== undefined || familyPrefix ? incomplete(buf) : parseError('ERR_PROXY_V1_BAD_SYNTAX');
  if (family === undefined) return parseError('ERR_PROXY_V1_BAD_SYNTAX');

  if (family === 'UNKNOWN') {
    // "the receiver must ignore anything presented before the CRLF is found"
    // (2.1); a bare LF still does not end a line, so it is refused.
    let i = familyEnd;
    if (at(buf, i) === SP) {
      i++;
      while (i < limit && at(buf, i) !== CR && at(buf, i) !== LF) i++;
      if (i === limit) return incomplete(buf);
    }
    return lineEnd(buf, i, limit, UNKNOWN_HEADER);
  }

  if (at(buf, familyEnd) !== SP) return parseError('ERR_PROXY_V1_BAD_SYNTAX');
  const classifyAddress = family === 'TCP4' ? classifyIPv4 : classifyIPv6;
  const bounds: number[] = [];
  let pos = familyEnd + 1;
  let stop = pos;
  for (let field = 0; field < 4; field++) {
    const isAddress = field < 2;
    stop = tokenEnd(buf, pos, limit);
    const viability = isAddress ? classifyAddress(buf, pos, stop) : classifyPort(buf, pos, stop);
    const code: ErrorCode = isAddress ? 'ERR_PROXY_V1_BAD_ADDRESS' : 'ERR_PROXY_V1_BAD_PORT';
    if (viability === 'invalid') return parseError(code);
    if (stop === limit) return incomplete(buf);
    // An empty field means two separators in a row: "exactly one space".
    if (stop === pos) return parseError('ERR_PROXY_V1_BAD_SYNTAX');
    if (viability !== 'complete') return parseError(code);
    bounds.push(pos, stop);
    if (field < 3) {
      if (at(buf, stop) !== SP) return parseError('ERR_PROXY_V1_BAD_SYNTAX');
      pos = stop + 1;
    }
  }
  const [srcAddrStart, srcAddrEnd, dstAddrStart, dstAddrEnd, srcPortStart, srcPortEnd, dstPortStart, dstPortEnd] =
    bounds as [number, number, number, number, number, number, number, number];
  return lineEnd(buf, stop, limit, {
    version: 1,
    command: 'PROXY',
    family,
    transport: 'STREAM',
    source: { address: buf.toString('latin1', srcAddrStart, srcAddrEnd), port: readPort(buf, srcPortStart, srcPortEnd) },
    destination: { address: buf.toString('latin1', dstAddrStart, dstAddrEnd), port: readPort(buf, dstPortStart, dstPortEnd) },
    tlvs: {},
  });
}

/** What {@link encodeProxyV1} needs: a {@link ProxyHeader} will do. */
export interface ProxyV1Input {
  readonly family: ProxyHeader['family'];
  readonly source?: ProxyEndpoint | null;
  readonly destination?: ProxyEndpoint | null;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`PROXY v1: port ${port} is not 0-65535`);
}

/**
 * Builds a PROXY v1 line (for tests and the project's own test clients).
 * "UNKNOWN" is written in its short form "PROXY UNKNOWN\r\n". Throws for input
 * no valid line can carry (a UNIX family, a missing endpoint, an address of the
 * wrong family, a port outside 0-65535): those are programmer errors.
 */
export function encodeProxyV1(header: ProxyV1Input): Buffer {
  const { family, source, destination } = header;
  if (family === 'UNKNOWN') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  if (family !== 'TCP4' && family !== 'TCP6') throw new TypeError(`PROXY v1 cannot carry family ${family}`);
  if (!source || !destination) throw new TypeError(`PROXY v1 ${family} needs a source and a destination`);
  const valid = family === 'TCP4' ? isIPv4Text : isIPv6Text;
  for (const endpoint of [source, destination]) {
    if (!valid(endpoint.address)) throw new TypeError(`PROXY v1: ${endpoint.address} is not a ${family} address`);
    checkPort(endpoint.port);
  }
  const line = `PROXY ${family} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`;
  if (line.length > PROXY_V1_MAX_BYTES) throw new RangeError(`PROXY v1 line would be ${line.length} bytes, over 107`);
  return Buffer.from(line, 'latin1');
}
