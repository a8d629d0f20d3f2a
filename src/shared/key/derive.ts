/**
 * Parsed request head + connection facts + `key` config → the client key and
 * the source it came from.
 */
import { canonicalIp } from '../ip/address.js';
import type { RequestHead } from '../protocol/http1.js';
import { cookieValue } from './cookie.js';
import { trustedForwardedAddress } from './forwarded.js';

import type { KeySource } from './sources.js';

export type { KeySource } from './sources.js';

/** The `key` section of the configuration. */
export interface KeyRules {
  /** Sources to try, first that yields a key wins. */
  readonly order: readonly KeySource[];
  /** Name of the cookie for the `cookie` source. */
  readonly cookie: string;
  /** Which X-Forwarded-For / Forwarded entry from the right is the client (1 = right-most). */
  readonly forwardedTrustedHops: number;
}

/** What is known about a connection when its key is decided. */
export interface KeyContext {
  /** The request head; null when the bytes are not HTTP/1.x (TLS, binary, too large). */
  readonly head: RequestHead | null;
  /** The PROXY header source address when one was honoured (null for LOCAL/UNKNOWN). */
  readonly proxySource: string | null;
  /** TCP peer address (any text form; may be '' if unknown). */
  readonly peerAddress: string;
  /** TCP peer is in proxyProtocol.trustedFrom (the caller decides with CidrList). */
  readonly peerTrusted: boolean;
}

/** A client key and the source that produced it. */
export interface ClientKey {
  readonly key: string;
  readonly source: KeySource;
}

function fromSource(source: KeySource, ctx: KeyContext, rules: KeyRules): string | null {
  switch (source) {
    case 'cookie': {
      const cookie = ctx.head?.cookie;
      return cookie === undefined ? null : cookieValue(cookie, rules.cookie);
    }
    case 'proxy':
      return ctx.proxySource === null ? null : canonicalIp(ctx.proxySource);
    case 'forwarded': {
      // Only a trusted proxy's entries mean anything: from anyone else the
      // whole header is client-written.
      const head = ctx.head;
      if (!ctx.peerTrusted || head === null) return null;
      return trustedForwardedAddress(head.forwardedFor, head.forwarded, rules.forwardedTrustedHops);
    }
    case 'remote':
      return canonicalIp(ctx.peerAddress) ?? '';
    default:
      return null; // not a source (configuration is validated; never throw here)
  }
}

/**
 * The first source in `rules.order` that yields a key wins:
 * - `cookie`: the value of the first cookie named `rules.cookie`, DQUOTEs
 *   stripped; an empty value yields nothing.
 * - `proxy`: the honoured PROXY header's source address, canonicalised.
 * - `forwarded`: only when the TCP peer is trusted. The X-Forwarded-For entry
 *   `forwardedTrustedHops` from the right (all X-Forwarded-For fields combined
 *   in order); without any X-Forwarded-For field, the `for=` of the RFC 7239
 *   Forwarded element that far from the right. Yields nothing when the list is
 *   shorter or the entry is not an IP address (`unknown`, `_hidden`, garbage).
 * - `remote`: the TCP peer's canonical address, or '' when it is unknown or
 *   not an IP address. Always yields.
 * When no listed source yields (an order without `remote`), the `remote` key
 * is used so that every connection still has one.
 *
 * Every address is canonicalised ({@link canonicalIp}), so `::ffff:203.0.113.5`
 * and `203.0.113.5` are one key. Never throws; work is bounded by what the
 * sources look at (lists are read from the right, cookies without splitting).
 */
export function deriveKey(ctx: KeyContext, rules: KeyRules): ClientKey {
  for (const source of rules.order) {
    const key = fromSource(source, ctx, rules);
    if (key !== null) return { key, source };
  }
  return { key: canonicalIp(ctx.peerAddress) ?? '', source: 'remote' };
}
