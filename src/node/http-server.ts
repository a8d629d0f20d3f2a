import type http from 'node:http';

/**
 * Starts Node's headersTimeout/requestTimeout checker on an http.Server that
 * never listens (the worker runtime feeds it with `emit('connection')`).
 * Node starts the checker on the server's 'listening' event
 * (lib/_http_server.js setupConnectionsTracking) every
 * `connectionsCheckingInterval` ms; without the event slowloris protection
 * would silently be off. Checked on Node 22, 24, 26. The interval is a public
 * option of http.createServer; here the app created the server, so the field
 * is set before the event.
 */
export function startTimeoutChecker(server: http.Server, intervalMs: number): void {
  const checked = server as http.Server & { connectionsCheckingInterval: number };
  checked.connectionsCheckingInterval = Math.min(checked.connectionsCheckingInterval, intervalMs);
  server.emit('listening');
}
