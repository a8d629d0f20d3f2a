import { canonicalIp } from '../ip/address.js';
import { trustedForwardedAddress } from '../key/forwarded.js';

/** What is known about who sent a request, for the audit trail. */
export interface ClientFacts {
  /** Source address of an honoured PROXY header (null: none, LOCAL or UNKNOWN). */
  readonly proxySource: string | null;
  /** Every X-Forwarded-For field value, in order. */
  readonly forwardedFor: readonly string[];
  /** Every RFC 7239 Forwarded field value, in order. */
  readonly forwarded: readonly string[];
  /** The TCP peer address (any text form). */
  readonly peer: string;
  /** The TCP peer is in proxyProtocol.trustedFrom. */
  readonly peerTrusted: boolean;
}

/**
 * The real client address for a log line, whatever `key.order` says (a
 * cookie-keyed client still has an address): the PROXY source when one was
 * honoured, else the trusted X-Forwarded-For (or Forwarded) entry
 * `hops` from the right — the same rules as the `forwarded` key source —
 * else the TCP peer.
 */
export function realClientAddress(facts: ClientFacts, hops: number): string {
  if (facts.proxySource !== null) return canonicalIp(facts.proxySource) ?? facts.proxySource;
  const forwarded = facts.peerTrusted ? trustedForwardedAddress(facts.forwardedFor, facts.forwarded, hops) : null;
  if (forwarded !== null) return forwarded;
  return canonicalIp(facts.peer) ?? facts.peer;
}

/** Longest request path kept in a log line; longer ones end with `…`. */
export const LOG_PATH_MAX = 200;

/** A request target cut for a log line (a research scanner's URL can be kilobytes). */
export function truncateForLog(target: string): string {
  return target.length <= LOG_PATH_MAX ? target : `${target.slice(0, LOG_PATH_MAX)}…`;
}
