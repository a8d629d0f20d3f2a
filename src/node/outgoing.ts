import http from 'node:http';
import type net from 'node:net';
import { internalsUsable } from './public-paths.js';

/**
 * Writing a response that another worker produced, bytes unchanged, through
 * a ServerResponse, so that Node's outgoing queue keeps it in its place among
 * the connection's pipelined responses and its back-pressure applies.
 * Mirrors lib/_http_outgoing.js (`_header`, `_headerSent`, `_writeRaw`,
 * `_last`) and lib/_http_server.js (`_sent100`, `socket._httpMessage`);
 * checked on Node 22, 24, 26.
 */

/** The private members of a ServerResponse used here. */
interface RawResponse {
  _header: string | null;
  _headerSent: boolean;
  _last: boolean;
  _writeRaw(data: Buffer, encoding: undefined, callback?: () => void): boolean;
  _sent100?: boolean;
}

/** What `_header` holds once relayed bytes began: the back's bytes start with its head, Node must not write one. */
const RELAYED_HEAD = 'relayed';

function raw(res: http.ServerResponse): RawResponse {
  return res as unknown as RawResponse;
}

/** Whether responses can be relayed raw here (else key.reuse "forward" hands back). */
export const RESPONSE_RELAY = internalsUsable('response-relay', () => {
  const probe = raw(new http.ServerResponse({ method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} } as http.IncomingMessage));
  return typeof probe._writeRaw === 'function' && probe._header === null && probe._headerSent === false && probe._last === false;
});

/** Node already answered `Expect: 100-continue` on this response's request (no checkContinue listener). */
export function sentContinue(res: http.ServerResponse): boolean {
  return raw(res)._sent100 === true;
}

/** Relayed bytes (or a head of Node's own) were written on this response. */
export function headWritten(res: http.ServerResponse): boolean {
  return raw(res)._header !== null;
}

/**
 * Writes relayed bytes in the response's place: to the client, or queued
 * behind the responses before it. The first call marks the head as written.
 * `written` runs once the bytes left this process.
 */
export function writeRelayed(res: http.ServerResponse, bytes: Buffer, written: () => void): void {
  const response = raw(res);
  if (response._header === null) {
    response._header = RELAYED_HEAD;
    response._headerSent = true;
  }
  response._writeRaw(bytes, undefined, written);
}

/** Makes Node close the connection once this response is finished (as after its own "Connection: close"). */
export function closeAfter(res: http.ServerResponse): void {
  raw(res)._last = true;
}

/** True while the http server is writing a response on this socket (it sets and clears `_httpMessage`). */
export function responseInProgress(socket: net.Socket): boolean {
  return ((socket as net.Socket & { _httpMessage?: unknown })._httpMessage ?? null) !== null;
}
