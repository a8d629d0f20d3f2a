import type http from 'node:http';
import type { RequestHead } from '../shared/protocol/http1.js';

/** The fields of a request Node parsed that key derivation reads (as parseRequestHead gives them). */
export function headOfRequest(req: http.IncomingMessage): RequestHead {
  const headers = req.headers;
  return {
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    version: req.httpVersion === '1.0' ? '1.0' : '1.1',
    host: headers.host,
    cookie: headers.cookie,
    forwardedFor: fieldValues(headers['x-forwarded-for']),
    forwarded: fieldValues(headers.forwarded),
    upgrade: headers.upgrade,
  };
}

/** Node joins repeated X-Forwarded-For / Forwarded fields with ', '; the type still allows an array. */
export function fieldValues(value: string | string[] | undefined): readonly string[] {
  return value === undefined ? [] : typeof value === 'string' ? [value] : value;
}
