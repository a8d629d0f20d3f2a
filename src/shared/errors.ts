/**
 * The one catalogue of error codes (like fastify's lib/errors.js and undici's
 * lib/core/errors.js). Parse failures and refusals are values carrying one of
 * these stable codes, never exceptions; start-up failures are thrown as
 * {@link CodedError}s. Add new codes here, grouped by the module that produces
 * them; the README's "Error codes" lists them all (a test keeps it so).
 */
export const ERROR_CODES = {
  // --- src/shared/protocol/proxy-v1.ts, proxy-v2.ts, proxy.ts (PROXY protocol) ---
  ERR_PROXY_V1_TOO_LONG: 'PROXY v1 header longer than 107 bytes',
  ERR_PROXY_V1_BAD_SYNTAX: 'PROXY v1 header is malformed',
  ERR_PROXY_V1_BAD_ADDRESS: 'PROXY v1 address is not valid for its family',
  ERR_PROXY_V1_BAD_PORT: 'PROXY v1 port is not valid',
  ERR_PROXY_V2_BAD_VERSION: 'PROXY v2 version is not 2',
  ERR_PROXY_V2_BAD_COMMAND: 'PROXY v2 command is neither LOCAL nor PROXY',
  ERR_PROXY_V2_BAD_FAMILY: 'PROXY v2 address family or transport is unknown',
  ERR_PROXY_V2_TOO_SHORT: 'PROXY v2 length is too short for its address family',
  ERR_PROXY_V2_BAD_TLV: 'PROXY v2 TLV overruns the header or is malformed',
  ERR_PROXY_V2_BAD_CRC: 'PROXY v2 CRC32C does not match',
  ERR_PROXY_V2_BAD_SIGNATURE: 'bytes given to the PROXY v2 parser do not start with the v2 signature',
  ERR_PROXY_V2_TOO_LONG: 'PROXY v2 header longer than the configured maximum',
  // --- src/shared/protocol/http1.ts (HTTP/1.x request head) ---
  ERR_HTTP_NOT_HTTP: 'bytes cannot be an HTTP/1.x request',
  ERR_HTTP_HEAD_TOO_LARGE: 'HTTP request head larger than the peek limit',
  ERR_HTTP_BAD_HEADER: 'HTTP header line is malformed',
  // --- src/shared/protocol/http1-framing.ts (request body framing, key.reuse handback) ---
  ERR_HTTP_BAD_LENGTH: 'Content-Length is not one decimal number, or comes twice, or with Transfer-Encoding',
  ERR_HTTP_BAD_TRANSFER_ENCODING: 'Transfer-Encoding does not end with chunked (or is not HTTP/1.1)',
  ERR_HTTP_BAD_CHUNK: 'chunked body is malformed (size line, CRLF after data, trailers) or beyond its limits',
  // --- src/master/ (connection refusals) ---
  ERR_PROXY_UNTRUSTED: 'PROXY header from a peer outside proxyProtocol.trustedFrom',
  ERR_PROXY_REQUIRED: 'proxyProtocol.mode is required and no PROXY header came',
  ERR_PEEK_LIMIT: 'more than limits.peekBytes without a complete PROXY header',
  ERR_PEEK_TIMEOUT: 'client sent no complete head within limits.peekTimeoutMs',
  ERR_MAX_CONNECTIONS: 'limits.maxConnections reached',
  ERR_ACCEPT: 'accept(2) failed on the listener',
  ERR_EMFILE: 'the master was near its descriptor limit (ulimit -n): the oldest connection still being read, or this one, was closed',
  ERR_NO_WORKER: 'no worker is ready to take the connection',
  ERR_CLIENT_CONNECTIONS: 'the client has limits.perClient.maxConnections open already',
  ERR_CLIENT_RATE: 'the client is over limits.perClient.connectionsPerSecond (or requestsPerSecond)',
  // --- src/master/api.ts (startBalancer rejects with a BalancerStartError; the command exits 2) ---
  ERR_CONFIG: 'the options or the config file do not validate',
  ERR_APP_START: 'the worker app did not load on the first start',
  ERR_LISTEN: 'a port could not be bound',
  ERR_UNSAFE_RUNTIME: 'this Node cannot hand connections off without losing bytes',
} as const;

/** A stable error code from the catalogue. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** An error thrown with a code from the catalogue (`error.code`, stable; the message is for people). */
export class CodedError<C extends ErrorCode = ErrorCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
