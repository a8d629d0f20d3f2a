import type { ConnectionInfo } from '../../shared/connection-info.js';
import { canonicalIp } from '../../shared/ip/address.js';
import { KEY_SOURCES, type KeySource } from '../../shared/key/sources.js';
import { encodeProxyV2, type ProxyEndpoint, type ProxyTlvs } from '../../shared/protocol/proxy.js';
import type { Endpoints } from '../client-conn.js';

/**
 * The PROXY v2 header a node writes in front of a connection it forwards to
 * the key's owner, and what the owner reads back from it. The header carries
 * the original client endpoints and the TLVs the entry node received, so the
 * app sees what it would see on a direct connection; one TLV of ours (a type
 * in the spec's custom range) carries the key the entry node derived and the
 * facts it derived it from, so the owner never derives it a second time and
 * both nodes agree on the key whatever the key order.
 */

/** Our TLV type (PP2_TYPE_MIN_CUSTOM 0xE0 .. PP2_TYPE_MAX_CUSTOM 0xEF). */
export const PEER_TLV_TYPE = 0xe5;

/** What the entry node learned about a connection, as the owner needs it. */
export interface ForwardedFacts {
  readonly key: string;
  readonly keySource: KeySource;
  /** The entry node's TCP peer (the load balancer, or the client). */
  readonly peer: string;
  readonly peerTrusted: boolean;
  /** The PROXY header the entry node honoured, or null. */
  readonly proxy: ConnectionInfo['proxy'];
  /** The entry node's id. */
  readonly via: string;
}

/** The TLV's JSON: short names, it travels on every forwarded connection. */
interface PeerTlv {
  k: string;
  s: KeySource;
  p: string;
  t: boolean;
  /** The entry node honoured a PROXY header (else the header's endpoints are its TCP endpoints). */
  x: boolean;
  v: string;
}

/**
 * The header for a forwarded connection: the honoured PROXY header's
 * endpoints and TLVs when there was one with addresses, else the entry
 * node's TCP endpoints; null when neither is known (the caller serves it
 * locally).
 */
export function peerHeader(facts: ForwardedFacts, tcp: Endpoints | null): Buffer | null {
  const honoured = facts.proxy?.source != null && facts.proxy.destination !== null ? facts.proxy : null;
  const ends = endpointPair(honoured ?? tcp);
  if (ends === null) return null;
  const tlv: PeerTlv = { k: facts.key, s: facts.keySource, p: facts.peer, t: facts.peerTrusted, x: honoured !== null, v: facts.via };
  const tlvs: ProxyTlvs = honoured?.tlvs ?? {};
  const other = [...(tlvs.other ?? []).filter((entry) => entry.type !== PEER_TLV_TYPE), { type: PEER_TLV_TYPE, value: Buffer.from(JSON.stringify(tlv)) }];
  return encodeProxyV2({ family: ends.family, source: ends.source, destination: ends.destination, tlvs: { ...tlvs, other } });
}

/** Both endpoints in one address family (an IPv4-mapped IPv6 address counts as IPv4), or null. */
function endpointPair(ends: { readonly source: ProxyEndpoint | null; readonly destination: ProxyEndpoint | null } | null): { family: 'TCP4' | 'TCP6'; source: ProxyEndpoint; destination: ProxyEndpoint } | null {
  if (ends?.source == null || ends.destination === null) return null;
  const source = canonicalIp(ends.source.address);
  const destination = canonicalIp(ends.destination.address);
  if (source === null || destination === null) return null;
  const v6 = source.includes(':');
  if (v6 !== destination.includes(':')) return null;
  return { family: v6 ? 'TCP6' : 'TCP4', source: { address: source, port: ends.source.port }, destination: { address: destination, port: ends.destination.port } };
}

/**
 * On the peer port: the connection as the entry node saw it, from the
 * header a trusted peer wrote; null when the header has no TLV of ours (or a
 * malformed one): the owner then treats it as any PROXY connection.
 */
export function readPeerHeader(proxy: NonNullable<ConnectionInfo['proxy']>): (ForwardedFacts & { readonly addresses: ConnectionInfo['addresses'] }) | null {
  const entry = proxy.tlvs.other?.find((tlv) => tlv.type === PEER_TLV_TYPE);
  if (entry === undefined || proxy.source === null || proxy.destination === null) return null;
  let tlv: Partial<PeerTlv>;
  try {
    tlv = JSON.parse(entry.value.toString('utf8')) as Partial<PeerTlv>;
  } catch {
    return null;
  }
  if (typeof tlv.k !== 'string' || !KEY_SOURCES.includes(tlv.s as KeySource) || typeof tlv.p !== 'string' || typeof tlv.t !== 'boolean' || typeof tlv.x !== 'boolean' || typeof tlv.v !== 'string') return null;
  const other = (proxy.tlvs.other ?? []).filter((item) => item.type !== PEER_TLV_TYPE);
  const { other: _ours, ...known } = proxy.tlvs;
  const tlvs: ProxyTlvs = other.length === 0 ? known : { ...known, other };
  const ends = { source: proxy.source, destination: proxy.destination };
  return {
    key: tlv.k,
    keySource: tlv.s as KeySource,
    peer: tlv.p,
    peerTrusted: tlv.t,
    via: tlv.v,
    proxy: tlv.x ? { ...ends, tlvs } : null,
    addresses: tlv.x ? undefined : ends,
  };
}
