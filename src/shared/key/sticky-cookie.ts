/**
 * The balancer's own sticky cookie (config `stickyCookie`): a value
 * naming a worker slot, signed with an HMAC so that a client can neither pick
 * nor forge its worker (HAProxy's `cookie SRV insert`, signed).
 *
 * Value format (every byte a RFC 6265 cookie-octet, no quoting needed):
 *
 *     <slot>.<expiresAt>.<mac>
 *
 * - `slot`: the worker slot, decimal, no leading zeros, below {@link MAX_SLOTS}.
 * - `expiresAt`: Unix time in seconds after which the value is stale, decimal;
 *   `0` when `maxAgeS` is not set (a browser-session cookie that never goes
 *   stale by itself). The expiry is inside the signed value because a client
 *   controls what it sends back: `Max-Age` alone would let it replay a cookie
 *   forever.
 * - `mac`: the first {@link MAC_BYTES} bytes of HMAC-SHA256(secret,
 *   `sticky-session-ts/1|<name>|<slot>|<expiresAt>`), base64url without padding.
 *   The cookie name is inside the MAC so that a value minted for one
 *   configuration is not accepted under another name with the same secret.
 *
 * Pure: no I/O, the clock is a parameter.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { MAX_SLOTS } from '../ring/rendezvous.js';
import { cookieValue } from './cookie.js';

/** The `stickyCookie` section of the configuration. */
export interface StickyCookieRules {
  /** Cookie name (an RFC 6265 token, validated by the config schema). */
  readonly name: string;
  /** HMAC key (at least 16 characters, validated by the config schema). */
  readonly secret: string;
  /** Lifetime in seconds; absent = no expiry (browser-session cookie). */
  readonly maxAgeS?: number | undefined;
}

/**
 * MAC length: 16 bytes (128 bits) of HMAC-SHA256. Truncation to at least
 * 128 bits keeps forgery at 2^-128 per try (RFC 2104 section 5 allows
 * truncation to no less than half the hash length; NIST SP 800-107 likewise).
 */
export const MAC_BYTES = 16;

/** The cookie's clock: whole seconds since the epoch (what its timestamp holds). */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
/** base64url characters for {@link MAC_BYTES} bytes without padding: ceil(16 * 4 / 3) = 22. */
const MAC_CHARS = 22;
/** Longest value accepted: 4 slot digits + '.' + 11 expiry digits + '.' + 22 MAC characters = 39. */
export const MAX_STICKY_VALUE_BYTES = 39;
/** Domain separation for the MAC input (a future format changes this). */
const MAC_CONTEXT = 'sticky-session-ts/1';

/** What a request's sticky cookie says. */
export type StickyVerdict =
  /** A genuine, unexpired cookie naming `slot`. `expiresAt` 0 = no expiry. */
  | { readonly kind: 'valid'; readonly slot: number; readonly expiresAt: number }
  /** The request carries no such cookie. */
  | { readonly kind: 'absent' }
  /**
   * A cookie that must be ignored: `malformed` (not this format), `forged`
   * (the MAC does not match: a client-made or tampered value, or another
   * secret), `stale` (genuine but past its expiry).
   */
  | { readonly kind: 'invalid'; readonly reason: StickyRejection };

/** Why a sticky cookie was ignored (a metrics label). */
export type StickyRejection = 'malformed' | 'forged' | 'stale';

const ABSENT: StickyVerdict = Object.freeze({ kind: 'absent' });
const MALFORMED: StickyVerdict = Object.freeze({ kind: 'invalid', reason: 'malformed' });
const FORGED: StickyVerdict = Object.freeze({ kind: 'invalid', reason: 'forged' });
const STALE: StickyVerdict = Object.freeze({ kind: 'invalid', reason: 'stale' });

/** `<slot>.<expiresAt>.<mac>`: slot without leading zeros, expiry 1-11 digits, 22 base64url characters. */
const VALUE_FORMAT = /^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,10})\.([A-Za-z0-9_-]{22})$/;

function mac(rules: StickyCookieRules, slot: number, expiresAt: number): Buffer {
  return createHmac('sha256', rules.secret)
    .update(`${MAC_CONTEXT}|${rules.name}|${slot}|${expiresAt}`)
    .digest()
    .subarray(0, MAC_BYTES);
}

/**
 * The cookie value naming `slot`, valid from `nowS` for `rules.maxAgeS`
 * seconds (or without expiry).
 * @throws RangeError for a slot outside 0..MAX_SLOTS-1 or a negative or
 *   non-integer clock (programmer errors).
 */
export function signStickyCookie(slot: number, nowS: number, rules: StickyCookieRules): string {
  if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_SLOTS) throw new RangeError(`slot must be an integer in 0..${MAX_SLOTS - 1}, got ${slot}`);
  if (!Number.isSafeInteger(nowS) || nowS < 0) throw new RangeError(`nowS must be a non-negative integer, got ${nowS}`);
  const expiresAt = rules.maxAgeS === undefined ? 0 : nowS + rules.maxAgeS;
  return `${slot}.${expiresAt}.${mac(rules, slot, expiresAt).toString('base64url')}`;
}

/**
 * Checks one cookie value (null = no cookie). The MAC is compared in constant
 * time ({@link timingSafeEqual}) and before the expiry, so the answer for a
 * forged value never depends on how close to valid it is. Never throws.
 */
export function verifyStickyCookie(value: string | null, nowS: number, rules: StickyCookieRules): StickyVerdict {
  if (value === null) return ABSENT;
  if (value.length > MAX_STICKY_VALUE_BYTES) return MALFORMED;
  const match = VALUE_FORMAT.exec(value);
  if (match === null) return MALFORMED;
  const slot = Number(match[1]);
  const expiresAt = Number(match[2]);
  if (slot >= MAX_SLOTS) return MALFORMED;
  const given = Buffer.from(match[3] as string, 'base64url');
  // 22 base64url characters always decode to 16 bytes; checked anyway, as
  // timingSafeEqual throws on a length mismatch.
  if (given.length !== MAC_BYTES || (match[3] as string).length !== MAC_CHARS) return MALFORMED;
  if (!timingSafeEqual(given, mac(rules, slot, expiresAt))) return FORGED;
  if (expiresAt !== 0 && nowS >= expiresAt) return STALE;
  return { kind: 'valid', slot, expiresAt };
}

/** {@link verifyStickyCookie} on the cookie named `rules.name` in a Cookie header value (undefined = no header). */
export function readStickyCookie(cookieHeader: string | undefined, nowS: number, rules: StickyCookieRules): StickyVerdict {
  if (cookieHeader === undefined) return ABSENT;
  return verifyStickyCookie(cookieValue(cookieHeader, rules.name), nowS, rules);
}

/**
 * Whether a response should (re)issue the cookie for `slot`: the request had
 * none, an invalid one, one naming another slot (the client was moved, e.g.
 * its slot went away), or one past half its lifetime (a sliding expiry, so a
 * steadily active client is never moved by its cookie going stale).
 */
export function needsStickyCookie(verdict: StickyVerdict, slot: number, nowS: number, rules: StickyCookieRules): boolean {
  if (verdict.kind !== 'valid' || verdict.slot !== slot) return true;
  if (verdict.expiresAt === 0 || rules.maxAgeS === undefined) return false;
  return verdict.expiresAt - nowS < rules.maxAgeS / 2;
}

/**
 * The Set-Cookie field value carrying `value`: `Path=/` (the whole site is one
 * worker's), `HttpOnly` (scripts have no business with it), `SameSite=Lax`,
 * `Max-Age` when the cookie expires, `Secure` when the connection is TLS.
 */
export function stickySetCookie(value: string, rules: StickyCookieRules, secure: boolean): string {
  let header = `${rules.name}=${value}; Path=/; HttpOnly; SameSite=Lax`;
  if (rules.maxAgeS !== undefined) header += `; Max-Age=${rules.maxAgeS}`;
  if (secure) header += '; Secure';
  return header;
}
