import type http from 'node:http';
import { needsStickyCookie, nowSeconds, readStickyCookie, signStickyCookie, stickySetCookie, type StickyCookieRules } from '../shared/key/sticky-cookie.js';
import type { RequestHook } from './request-hooks.js';

/**
 * config.stickyCookie in the worker runtime: a response to a request
 * without a valid sticky cookie for this worker's slot carries a Set-Cookie
 * naming the slot (signed, src/shared/key/sticky-cookie.ts). The master then sends
 * the client's later requests straight to this slot while it is ready.
 *
 * The cookie is added when the head is written, not now: the app may still set
 * its own cookies (setHeader('set-cookie') would otherwise replace ours, and a
 * headers object given to writeHead would too), and both must reach the client.
 */
export function stickyCookieHook(rules: StickyCookieRules, slot: number, secure: boolean): RequestHook {
  return (req, res) => {
    const now = nowSeconds();
    const verdict = readStickyCookie(req.headers.cookie, now, rules);
    if (!needsStickyCookie(verdict, slot, now, rules)) return false;
    addCookieAtWriteHead(res, stickySetCookie(signStickyCookie(slot, now, rules), rules, secure));
    return false;
  };
}

type WriteHead = (this: http.ServerResponse, statusCode: number, ...rest: unknown[]) => http.ServerResponse;

/**
 * Wraps this response's writeHead (Node calls it for implicit heads too) so
 * that `cookie` is appended to whatever Set-Cookie the app sets, in either
 * form of the headers argument.
 */
function addCookieAtWriteHead(res: http.ServerResponse, cookie: string): void {
  const original = res.writeHead as unknown as WriteHead;
  const wrapped = function (this: http.ServerResponse, statusCode: number, ...rest: unknown[]): http.ServerResponse {
    // writeHead(status[, statusMessage][, headers])
    const index = typeof rest[0] === 'string' ? 1 : 0;
    const headers = rest[index];
    if (Array.isArray(headers)) {
      // Raw [name, value, ...]: Node drops the set-cookie values set before only
      // when the array has its own, so add ours to the array exactly then.
      const hasSetCookie = headers.some((entry, i) => i % 2 === 0 && String(entry).toLowerCase() === 'set-cookie');
      if (hasSetCookie) rest[index] = [...(headers as unknown[]), 'set-cookie', cookie];
      else this.appendHeader('set-cookie', cookie);
    } else if (headers !== null && typeof headers === 'object') {
      const object = headers as Record<string, unknown>;
      const name = Object.keys(object).find((key) => key.toLowerCase() === 'set-cookie');
      if (name === undefined) {
        this.appendHeader('set-cookie', cookie);
      } else {
        rest[index] = { ...object, [name]: [...toList(object[name] as string | string[] | number | undefined), cookie] };
      }
    } else {
      this.appendHeader('set-cookie', cookie);
    }
    return original.call(this, statusCode, ...rest);
  };
  res.writeHead = wrapped as unknown as typeof res.writeHead;
}

function toList(value: string | string[] | number | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [String(value)];
}
