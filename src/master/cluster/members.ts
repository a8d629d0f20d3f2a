import { canonicalIp } from '../../shared/ip/address.js';

/** One member as a membership source reports it. */
export interface MemberRecord {
  /** `host:port` (`[v6]:port`): the address its peer port is reached at. */
  readonly id: string;
  /** It is leaving: it keeps its connections but gets no new keys. */
  readonly draining: boolean;
}

/**
 * Where the member list comes from: a static list, DNS records, Redis
 * heartbeats. The cluster reads whatever list a source reports and makes
 * every decision itself (src/master/cluster/membership.ts).
 */
export interface MemberSource {
  /**
   * Starts: `onMembers` gets each list read, `onError` each failed read (the
   * last list stays in effect). Resolves after the first read, whatever it gave.
   */
  start(onMembers: (members: readonly MemberRecord[]) => void, onError: (error: Error) => void): Promise<void>;
  /** This node is leaving: tell the others where the source can (Redis); a no-op elsewhere. */
  drain(): Promise<void>;
  /** Stops reading; leaves the list where the source can. */
  stop(): Promise<void>;
}

/**
 * One read of a source, reported: the list to `onMembers`, a failure to
 * `onError`, nothing once the source has stopped. Never rejects.
 */
export async function readAndReport(
  read: () => Promise<readonly MemberRecord[]>,
  stopped: () => boolean,
  onMembers: (members: readonly MemberRecord[]) => void,
  onError: (error: Error) => void,
): Promise<void> {
  try {
    const members = await read();
    if (!stopped()) onMembers(members);
  } catch (error) {
    if (!stopped()) onError(error as Error);
  }
}

/** A member id from a host and a port, the host in canonical form (IPv6 in brackets). */
export function memberId(host: string, port: number): string {
  const ip = canonicalIp(host);
  const name = ip ?? host.toLowerCase();
  return name.includes(':') ? `[${name}]:${port}` : `${name}:${port}`;
}

/** A `host:port` id in canonical form, and its parts. */
export function parseMemberId(id: string): { readonly id: string; readonly host: string; readonly port: number } {
  const colon = id.lastIndexOf(':');
  const rawHost = id.slice(0, colon);
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  const port = Number(id.slice(colon + 1));
  return { id: memberId(host, port), host: canonicalIp(host) ?? host, port };
}

/** A fixed list: the config's. */
export class StaticMembers implements MemberSource {
  constructor(private readonly ids: readonly string[]) {}

  start(onMembers: (members: readonly MemberRecord[]) => void): Promise<void> {
    onMembers(this.ids.map((id) => ({ id: parseMemberId(id).id, draining: false })));
    return Promise.resolve();
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
