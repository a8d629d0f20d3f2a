/**
 * PROXY protocol detection (HAProxy doc/proxy-protocol.txt): decides from the
 * first bytes of a connection whether a v1 line or a v2 header starts there,
 * and hands the bytes to the matching parser. Pure: no I/O, no timers, no
 * logging, no node:net.
 */
import { NEED_MORE, type ParseResult } from './result.js';
import type { ProxyHeader } from './proxy-header.js';
import { parseProxyV1, PROXY_V1_PREFIX } from './proxy-v1.js';
import { parseProxyV2, PROXY_V2_SIGNATURE, type ProxyV2Options } from './proxy-v2.js';

export {
  PROXY_V1_MAX_BYTES,
  PROXY_V1_PREFIX,
  parseProxyV1,
  encodeProxyV1,
  type ProxyV1Input,
} from './proxy-v1.js';
export {
  PROXY_V2_SIGNATURE,
  PROXY_V2_FIXED_BYTES,
  PROXY_V2_MAX_BYTES,
  parseProxyV2,
  encodeProxyV2,
  type ProxyV2Input,
  type ProxyV2Options,
} from './proxy-v2.js';

export type { ProxyEndpoint, ProxyHeader, ProxyTlvs } from './proxy-header.js';

/** The answer of {@link parseProxyHeader}: a parse result, or "no PROXY header here". */
export type ProxyParseResult = ParseResult<ProxyHeader> | { readonly kind: 'absent' };

/** The one shared "not a PROXY header" value. */
export const ABSENT = Object.freeze({ kind: 'absent' }) as { readonly kind: 'absent' };

const P = 0x50;
const CR = 0x0d;

/** True while `buf` is a prefix of `prefix` or starts with all of it. */
function matchesPrefix(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.compare(prefix, 0, n, 0, n) === 0;
}

/**
 * Detects and parses a PROXY header at the start of `buf`.
 * - 'absent': the bytes can no longer start a PROXY header ("GET ", "POST",
 *   a TLS record, "\r\n" then something other than the v2 signature...); the
 *   caller treats them all as application data. Decided at the first byte
 *   that differs from both "PROXY " and the v2 signature.
 * - 'need-more': still a possible prefix of a valid header.
 * - 'done': parsed; `consumed` is the header length, application data starts there.
 * - 'error': it is a PROXY header (the whole "PROXY " or the 12-byte v2
 *   signature was seen) but malformed; `code` is a stable ERR_PROXY_* code.
 * Only the first header counts: anything after `consumed`, even a second
 * "PROXY ...", is application data. Never throws.
 */
export function parseProxyHeader(buf: Buffer, options?: ProxyV2Options): ProxyParseResult {
  if (buf.length === 0) return NEED_MORE;
  const first = buf[0];
  if (first === P) {
    if (!matchesPrefix(buf, PROXY_V1_PREFIX)) return ABSENT;
    return buf.length < PROXY_V1_PREFIX.length ? NEED_MORE : parseProxyV1(buf);
  }
  if (first === CR) {
    if (!matchesPrefix(buf, PROXY_V2_SIGNATURE)) return ABSENT;
    return buf.length < PROXY_V2_SIGNATURE.length ? NEED_MORE : parseProxyV2(buf, options);
  }
  return ABSENT;
}
