/** What a PROXY header says, v1 or v2: the types every PROXY consumer uses (the parsers make them). */

/** One end of the proxied connection. */
export interface ProxyEndpoint {
  /**
   * v1: the address exactly as written in the line. v2: canonical text, as
   * Node formats `socket.remoteAddress` (IPv4 dotted; IPv6 compressed,
   * lowercase, with a dotted tail for ::ffff:a.b.c.d); UNIX: the path.
   */
  readonly address: string;
  /** 0-65535; 0 for UNIX sockets. */
  readonly port: number;
}

/**
 * The v2 TLVs that were present (proxy-protocol.txt 2.2.1-2.2.7, and AWS's
 * 0xEA). Plain data, so it survives structured clone over IPC.
 */
export interface ProxyTlvs {
  /** PP2_TYPE_ALPN (0x01), e.g. "h2". */
  alpn?: string;
  /** PP2_TYPE_AUTHORITY (0x02): the host name the client asked for (SNI). */
  authority?: string;
  /** PP2_TYPE_CRC32C (0x03): present only when it matched the header. */
  crc32c?: number;
  /** PP2_TYPE_UNIQUE_ID (0x05): at most 128 opaque bytes. */
  uniqueId?: Buffer;
  /** PP2_TYPE_NETNS (0x30): the network namespace name. */
  netns?: string;
  /** PP2_TYPE_SSL (0x20) with the sub-TLVs 0x21-0x25 that were present. */
  ssl?: {
    /** PP2_CLIENT_SSL 0x01 | PP2_CLIENT_CERT_CONN 0x02 | PP2_CLIENT_CERT_SESS 0x04. */
    client: number;
    /** 0 when the client presented a certificate and it was verified. */
    verify: number;
    version?: string;
    cn?: string;
    cipher?: string;
    sigAlg?: string;
    keyAlg?: string;
  };
  /** PP2_TYPE_AWS (0xEA) subtype PP2_SUBTYPE_AWS_VPCE_ID (0x01), e.g. "vpce-08d2bf15fac5001c9". */
  awsVpceId?: string;
  /** Every other type (custom 0xE0-0xEF, experimental, unassigned), raw and in order. NOOP is dropped. */
  other?: Array<{ type: number; value: Buffer }>;
}

/** A parsed PROXY header, v1 or v2. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  /** v1 is always 'PROXY'. 'LOCAL' (v2 health checks): use the real peer. */
  readonly command: 'PROXY' | 'LOCAL';
  /** v2: AF_INET -> 'TCP4', AF_INET6 -> 'TCP6', AF_UNIX -> 'UNIX', AF_UNSPEC -> 'UNKNOWN' (also for UDP). */
  readonly family: 'TCP4' | 'TCP6' | 'UNIX' | 'UNKNOWN';
  /** v1: 'STREAM', or 'UNSPEC' for UNKNOWN. */
  readonly transport: 'STREAM' | 'DGRAM' | 'UNSPEC';
  /** null for v1 UNKNOWN, v2 LOCAL, v2 AF_UNSPEC and v2 transport UNSPEC. */
  readonly source: ProxyEndpoint | null;
  readonly destination: ProxyEndpoint | null;
  /** {} for v1 and for v2 LOCAL. */
  readonly tlvs: ProxyTlvs;
}
