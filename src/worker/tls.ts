import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { loadTlsMaterial, type TlsSection } from '../shared/config/tls-material.js';
import { copyShadowedAddresses, tlsRawSocket } from '../node/socket.js';

/**
 * TLS termination in the worker (config `tls`). The master cannot see through
 * TLS, so it keys on the PROXY header and the TCP peer and hands the raw socket
 * over with the ClientHello bytes it read; this module puts a `tls.Server` in
 * front of the app's server:
 *
 * raw socket (+ replayed bytes) → tls.Server → 'secureConnection'
 *   → ALPN "h2" (http2: true): an HTTP/2 session whose requests go to the app's 'request' listeners
 *   → otherwise: the TLS socket is emitted as 'connection' into the app's own server.
 *
 * Feeding the TLS socket into the app's http.Server (instead of building an
 * https.Server around its listener) keeps everything the runtime set up on that
 * server: request hooks, headersTimeout/requestTimeout and its checker,
 * keep-alive, 'upgrade' (wss), and closeIdleConnections for draining.
 */

/** What the worker runtime needs from the TLS front. */
export interface TlsFront {
  /** The server the runtime emits handed-off raw sockets into (as 'connection'). */
  readonly server: net.Server;
  /** Re-reads cert/key/ca and swaps the secure context in place; on failure keeps the old one. */
  reload(): void;
  /** Asks open HTTP/2 sessions to finish (GOAWAY); HTTP/1.1 is drained by the runtime. */
  drain(): void;
}

/** Options of the TLS front besides the certificate material. */
export interface TlsFrontOptions {
  /** A client must finish its handshake within this (the master's peekTimeoutMs: it could not see it). */
  readonly handshakeTimeoutMs: number;
  /** An HTTP/2 session must complete its first request's headers within this (limits.headersTimeoutMs, as for HTTP/1). */
  readonly headersTimeoutMs: number;
}

/**
 * A TLS socket answers `remoteAddress` from the TCP handle underneath it (its
 * TLSWrap proxies getpeername to the parent handle), not from the raw socket's
 * properties: copy the PROXY addresses the runtime put on the raw socket
 * underneath, so `req.socket.remoteAddress` is the real client's over TLS too.
 * The HTTP/2 compat `req.socket` is a proxy that reads these from the TLS socket.
 */
function inheritProxyAddresses(socket: tls.TLSSocket): void {
  const raw = tlsRawSocket(socket);
  if (raw) copyShadowedAddresses(raw, socket);
}

/**
 * Builds the TLS front for the app's server. Throws when the certificate
 * material does not load (the worker cannot start; the config loader has
 * already checked it once at master start).
 */
export function createTlsFront(app: net.Server, section: TlsSection, options: TlsFrontOptions, log: Logger): TlsFront {
  const loaded = loadTlsMaterial(section);
  if (!loaded.ok) throw new Error(loaded.message);
  let fingerprint = loaded.material.fingerprint256;

  // The app already terminates TLS itself (an https/tls/http2 secure server):
  // no second layer, only its certificate comes from the config (and reloads).
  if (app instanceof tls.Server) {
    app.setSecureContext(loaded.material.options);
    app.prependListener('secureConnection', inheritProxyAddresses);
    return { server: app, reload: () => reload(app), drain: () => {} };
  }

  const useHttp2 = section.http2 && app instanceof http.Server;
  if (section.http2 && !useHttp2) log.warn('tls.http2 needs an HTTP app; serving TLS without HTTP/2');
  const front = tls.createServer({
    ...loaded.material.options,
    // Order is the server's preference (RFC 7301 §3.2: the server selects).
    ALPNProtocols: useHttp2 ? ['h2', 'http/1.1'] : app instanceof http.Server ? ['http/1.1'] : [],
    handshakeTimeout: options.handshakeTimeoutMs,
  });
  // A failed handshake (scanner, wrong certificate on the client's side) is the client's business.
  front.on('tlsClientError', (error, socket) => {
    // Before 'secureConnection' the PROXY addresses are only on the raw socket underneath.
    const raw = tlsRawSocket(socket);
    log.debug({ client: raw?.remoteAddress ?? socket.remoteAddress, err: error.message }, 'tls handshake failed');
  });

  const sessions = new Set<http2.ServerHttp2Session>();
  let h2: http2.Http2Server | null = null;
  if (useHttp2) {
    // A plain (h2c) Http2Server fed already-decrypted TLS sockets: ALPN chose h2
    // in the front, so the session speaks HTTP/2 over the TLS socket.
    h2 = http2.createServer();
    // Through the app's server so request hooks and the app's own listeners run in order.
    h2.on('request', (req, res) => app.emit('request', req, res));
    h2.on('session', (session) => {
      sessions.add(session);
      // http.Server's headersTimeout for HTTP/2: a session that opens no stream (a client that sends
      // the preface and then nothing, or HEADERS without their end) is closed, not kept forever.
      const headersTimer = setTimeout(() => {
        log.debug({ client: session.socket?.remoteAddress, timeoutMs: options.headersTimeoutMs }, 'http2 session sent no request headers in time; closing');
        session.destroy();
      }, options.headersTimeoutMs);
      headersTimer.unref();
      session.once('stream', () => clearTimeout(headersTimer));
      session.once('close', () => {
        clearTimeout(headersTimer);
        sessions.delete(session);
      });
    });
  }
  front.on('secureConnection', (socket: tls.TLSSocket) => {
    inheritProxyAddresses(socket);
    if (h2 !== null && socket.alpnProtocol === 'h2') h2.emit('connection', socket);
    else app.emit('connection', socket);
  });

  function reload(target: tls.Server): void {
    const next = loadTlsMaterial(section);
    if (!next.ok) {
      log.error({ err: next.message, fingerprint }, 'tls reload failed; keeping the current certificate');
      return;
    }
    // Only new handshakes use the new context; open connections keep theirs.
    target.setSecureContext(next.material.options);
    log.info({ from: fingerprint, to: next.material.fingerprint256, validTo: next.material.validTo }, 'tls certificate reloaded');
    fingerprint = next.material.fingerprint256;
  }

  return {
    server: front,
    reload: () => reload(front),
    drain: () => {
      // GOAWAY: streams in progress finish, the client opens new ones elsewhere.
      for (const session of sessions) session.close();
    },
  };
}
