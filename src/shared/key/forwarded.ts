/**
 * The client address a trusted proxy recorded in X-Forwarded-For or in RFC
 * 7239 Forwarded, counted from the right: the right-most entry was appended by
 * the proxy next to us, everything to its left may have been written by the
 * client. Lists are scanned from the right and only as far as needed, so a
 * 1000-entry or 64 KiB header costs no more than its last few entries.
 */
import { canonicalIp } from '../ip/address.js';
import { BACKSLASH, COLON, COMMA, DQUOTE, EQUALS, SEMICOLON, isDigit, isOws } from '../protocol/ascii.js';

/**
 * RFC 7239 6: `node-port = port / obfport`, `port = 1*5DIGIT`,
 * `obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")`.
 */
function isNodePort(text: string, start: number): boolean {
  const length = text.length;
  if (start >= length) return false;
  if (text.charCodeAt(start) === 0x5f) {
    if (start + 1 === length) return false;
    for (let i = start + 1; i < length; i++) {
      const c = text.charCodeAt(i);
      const lower = c | 0x20;
      if (!(isDigit(c) || (lower >= 0x61 && lower <= 0x7a) || c === 0x2e || c === 0x5f || c === 0x2d)) {
        return false;
      }
    }
    return true;
  }
  if (length - start > 5) return false;
  for (let i = start; i < length; i++) if (!isDigit(text.charCodeAt(i))) return false;
  return true;
}

/**
 * Canonical address of a forwarded node: an IP address as {@link canonicalIp}
 * accepts it, `IPv4:port`, `[IPv6]` or `[IPv6]:port` (RFC 7239 6; some proxies,
 * e.g. Azure Application Gateway, put the same forms into X-Forwarded-For).
 * Null for `unknown`, obfuscated identifiers (`_hidden`) and anything else.
 */
export function nodeAddress(text: string): string | null {
  if (text.charCodeAt(0) === 0x5b) {
    const close = text.indexOf(']');
    if (close < 0) return null;
    if (close + 1 < text.length) {
      if (text.charCodeAt(close + 1) !== COLON || !isNodePort(text, close + 2)) return null;
      return canonicalIp(text.slice(0, close + 1));
    }
    return canonicalIp(text);
  }
  const address = canonicalIp(text);
  if (address !== null) return address;
  // "IPv4:port": exactly one colon (an IPv6 text has at least two).
  const colon = text.indexOf(':');
  if (colon <= 0 || text.indexOf(':', colon + 1) >= 0 || !isNodePort(text, colon + 1)) return null;
  return canonicalIp(text.slice(0, colon));
}

function validHops(hops: number): boolean {
  return Number.isSafeInteger(hops) && hops >= 1;
}

/**
 * The X-Forwarded-For entry `hops` from the right, canonicalised. All field
 * values are one comma-separated list in order (RFC 9110 5.3); empty list
 * elements are ignored and not counted (RFC 9110 5.6.1). Null when the list
 * has fewer than `hops` entries or that entry is not an address.
 */
export function xForwardedForAddress(values: readonly string[], hops: number): string | null {
  if (!validHops(hops)) return null;
  let remaining = hops;
  for (let v = values.length - 1; v >= 0; v--) {
    const value = values[v] as string;
    let end = value.length;
    while (end > 0) {
      const comma = value.lastIndexOf(',', end - 1);
      let start = comma + 1;
      let stop = end;
      while (start < stop && isOws(value.charCodeAt(start))) start++;
      while (stop > start && isOws(value.charCodeAt(stop - 1))) stop--;
      if (stop > start && --remaining === 0) return nodeAddress(value.slice(start, stop));
      if (comma < 0) break;
      end = comma;
    }
  }
  return null;
}

/** True when the DQUOTE at `index` is escaped: preceded by an odd run of backslashes. */
function isEscaped(text: string, index: number): boolean {
  let run = 0;
  for (let i = index - 1; i >= 0 && text.charCodeAt(i) === BACKSLASH; i--) run++;
  return run % 2 === 1;
}

/**
 * Value of the first `for` parameter (case-insensitive name) in one
 * forwarded-element `text[start, end)`, unquoted (RFC 7239 4: `forwarded-pair =
 * token "=" value`, `value = token / quoted-string`). Null when there is none.
 */
function forParameter(text: string, start: number, end: number): string | null {
  let pos = start;
  while (pos < end) {
    while (pos < end && isOws(text.charCodeAt(pos))) pos++;
    // Pair name up to '=' (or the pair's end).
    const nameStart = pos;
    while (pos < end) {
      const c = text.charCodeAt(pos);
      if (c === EQUALS || c === SEMICOLON || c === DQUOTE) break;
      pos++;
    }
    const isFor =
      pos - nameStart === 3 &&
      pos < end &&
      text.charCodeAt(pos) === EQUALS &&
      (text.charCodeAt(nameStart) | 0x20) === 0x66 && // f
      (text.charCodeAt(nameStart + 1) | 0x20) === 0x6f && // o
      (text.charCodeAt(nameStart + 2) | 0x20) === 0x72; // r
    if (pos < end && text.charCodeAt(pos) === EQUALS) pos++;

    // Value: quoted-string or token, up to the next ';' outside quotes.
    let value = '';
    if (pos < end && text.charCodeAt(pos) === DQUOTE) {
      pos++;
      let chunk = pos;
      while (pos < end) {
        const c = text.charCodeAt(pos);
        if (c === DQUOTE) break;
        if (c === BACKSLASH && pos + 1 < end) {
          // quoted-pair: drop the backslash, keep the next character.
          if (isFor) value += text.slice(chunk, pos);
          chunk = pos + 1;
          pos += 2;
          continue;
        }
        pos++;
      }
      if (isFor) return value + text.slice(chunk, pos);
      while (pos < end && text.charCodeAt(pos) !== SEMICOLON) pos++;
    } else {
      const valueStart = pos;
      while (pos < end && text.charCodeAt(pos) !== SEMICOLON) pos++;
      if (isFor) {
        let valueEnd = pos;
        while (valueEnd > valueStart && isOws(text.charCodeAt(valueEnd - 1))) valueEnd--;
        return text.slice(valueStart, valueEnd);
      }
    }
    pos++; // past ';'
  }
  return null;
}

/**
 * The `for=` address of the Forwarded element `hops` from the right,
 * canonicalised. All field values are one list in order; elements are split
 * at commas outside quoted strings (scanning right to left, a DQUOTE preceded
 * by an odd run of backslashes is a quoted-pair). Null when there are fewer
 * than `hops` elements, or that element has no `for`, or its node is
 * `unknown`, obfuscated or not an address.
 */
export function forwardedForAddress(values: readonly string[], hops: number): string | null {
  if (!validHops(hops)) return null;
  let remaining = hops;
  for (let v = values.length - 1; v >= 0; v--) {
    const value = values[v] as string;
    let end = value.length;
    let pos = end - 1;
    let quoted = false;
    for (;;) {
      // Find the start of the element ending at `end`.
      while (pos >= 0) {
        const c = value.charCodeAt(pos);
        if (c === DQUOTE && !isEscaped(value, pos)) quoted = !quoted;
        else if (c === COMMA && !quoted) break;
        pos--;
      }
      let start = pos + 1;
      while (start < end && isOws(value.charCodeAt(start))) start++;
      if (start < end && --remaining === 0) {
        const node = forParameter(value, start, end);
        return node === null ? null : nodeAddress(node);
      }
      if (pos < 0) break;
      end = pos;
      pos--;
    }
  }
  return null;
}

/**
 * The client address a trusted proxy forwarded: the X-Forwarded-For entry
 * `hops` from the right when there is any X-Forwarded-For field, else the
 * RFC 7239 Forwarded `for=` that far from the right; null when there is none
 * or it is not an IP address. The caller decides whether the peer is trusted.
 */
export function trustedForwardedAddress(forwardedFor: readonly string[], forwarded: readonly string[], hops: number): string | null {
  return forwardedFor.length > 0 ? xForwardedForAddress(forwardedFor, hops) : forwarded.length > 0 ? forwardedForAddress(forwarded, hops) : null;
}
