/**
 * The edge inspection rule engine: one pure function, compiled once
 * from `config.inspect`, called by the master on the first request head of a
 * connection and by the worker runtime on every request after it. No I/O, no
 * logging, no allocation on the allowed path except where a path needs
 * normalising.
 *
 * Checks, in this order (the first that fails decides):
 * 1. `maxUrlBytes` → 414. First, so that no pattern ever runs over a huge target.
 * 2. `methods` → 405 with `Allow` (RFC 9110 15.5.6: a 405 MUST carry Allow).
 *    Methods are case-sensitive (RFC 9110 9.1).
 * 3. `hosts` → 421 Misdirected Request (RFC 9110 15.5.20: this server is not
 *    configured to answer for that authority). The host of an absolute-form
 *    target wins over the Host field (RFC 9112 3.2.2); case-insensitive, port
 *    and a trailing dot ignored.
 * 4. `paths.deny` → 404, then `paths.allow` → 404 when none matches.
 *
 * Paths are matched like NGINX matches `location`: on the path alone (no
 * query), percent-decoded, with `.`/`..` segments resolved and repeated
 * slashes merged — otherwise `/api/../phpmyadmin/` would pass an allow rule for
 * `^/api/` and `/setup.ph%70` would slip past a deny rule for `\.php$`.
 */
import type { Config } from '../config/schema.js';

/** The `inspect` section of the configuration. */
export type InspectConfig = NonNullable<Config['inspect']>;

/** Which rule refused a request (a metrics label and a log field). */
export type InspectRule = 'method' | 'host' | 'path-allow' | 'path-deny' | 'url-length';

/** Why a request is refused and how to answer it. */
export interface Refusal {
  readonly status: 404 | 405 | 414 | 421;
  readonly rule: InspectRule;
  /** The `Allow` field value of a 405. */
  readonly allow?: string;
}

/**
 * A compiled rule set: `null` = allowed, otherwise the refusal. The same
 * refusal objects are returned every time (frozen), so callers may cache per
 * refusal.
 */
export type Inspector = (method: string, target: string, host: string | undefined) => Refusal | null;

/** Compiles `config.inspect` once. Patterns were validated by the config schema. */
export function compileInspector(config: InspectConfig): Inspector {
  const maxUrlBytes = config.maxUrlBytes ?? Infinity;
  const methods = config.methods === undefined ? null : new Set(config.methods);
  const hosts = config.hosts === undefined ? null : compileHosts(config.hosts);
  const deny = (config.paths?.deny ?? []).map((pattern) => new RegExp(pattern));
  const allow = config.paths?.allow === undefined ? null : config.paths.allow.map((pattern) => new RegExp(pattern));

  const URL_LENGTH: Refusal = Object.freeze({ status: 414, rule: 'url-length' });
  const METHOD: Refusal = Object.freeze({ status: 405, rule: 'method', allow: [...(methods ?? [])].join(', ') });
  const HOST: Refusal = Object.freeze({ status: 421, rule: 'host' });
  const PATH_DENY: Refusal = Object.freeze({ status: 404, rule: 'path-deny' });
  const PATH_ALLOW: Refusal = Object.freeze({ status: 404, rule: 'path-allow' });
  const needsPath = deny.length > 0 || allow !== null;

  return (method, target, host) => {
    // The target is latin1-decoded bytes (http1.ts, and Node's req.url for the
    // visible-ASCII targets llhttp accepts): length in chars = length in bytes.
    if (target.length > maxUrlBytes) return URL_LENGTH;
    if (methods !== null && !methods.has(method)) return METHOD;
    const split = splitTarget(target);
    if (hosts !== null && !hosts(split.authority ?? host)) return HOST;
    if (!needsPath) return null;
    const path = normalisePath(split.path);
    for (const pattern of deny) if (pattern.test(path)) return PATH_DENY;
    if (allow === null) return null;
    for (const pattern of allow) if (pattern.test(path)) return null;
    return PATH_ALLOW;
  };
}

/** A request-target cut into the authority (absolute-form only) and the path. */
interface SplitTarget {
  readonly authority: string | undefined;
  readonly path: string;
}

/**
 * RFC 9112 3.2: origin-form `/p?q`, absolute-form `http://host/p?q`,
 * authority-form `host:port` (CONNECT) and asterisk-form `*`. The latter two
 * have no path; they are matched as written so that a path rule can still
 * refuse them.
 */
export function splitTarget(target: string): SplitTarget {
  if (target.charCodeAt(0) === 0x2f /* / */) return { authority: undefined, path: pathOnly(target, 0) };
  const scheme = target.indexOf('://');
  if (scheme > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(target.slice(0, scheme))) {
    const start = scheme + 3;
    let end = start;
    while (end < target.length) {
      const c = target.charCodeAt(end);
      if (c === 0x2f || c === 0x3f || c === 0x23) break; // / ? #
      end++;
    }
    const authority = target.slice(start, end);
    // userinfo@ is not part of the host (RFC 3986 3.2.1).
    const at = authority.lastIndexOf('@');
    return { authority: at < 0 ? authority : authority.slice(at + 1), path: end < target.length && target.charCodeAt(end) === 0x2f ? pathOnly(target, end) : '/' };
  }
  return { authority: undefined, path: target };
}

function pathOnly(target: string, start: number): string {
  let end = start;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === 0x3f || c === 0x23) break; // ? #
    end++;
  }
  return start === 0 && end === target.length ? target : target.slice(start, end);
}

/**
 * Percent-decodes, resolves dot segments (RFC 3986 5.2.4) and merges repeated
 * slashes, like NGINX before `location` matching. Paths without `%`, `//` or
 * `/.` (nearly all) are returned as they are. An invalid `%` escape is left as
 * written (it cannot hide a character).
 */
export function normalisePath(path: string): string {
  if (path.indexOf('%') < 0 && path.indexOf('//') < 0 && path.indexOf('/.') < 0) return path;
  const input = path.indexOf('%') < 0 ? path : percentDecode(path);
  // Asterisk- and authority-form targets have no segments to resolve.
  if (input.charCodeAt(0) !== 0x2f /* / */) return input;
  // One pass over the segments ("/seg"), appending the kept ones to `out`.
  let out = '';
  for (let i = 0; i < input.length; ) {
    let next = input.indexOf('/', i + 1);
    if (next < 0) next = input.length;
    const length = next - i - 1;
    const dot = length >= 1 && length <= 2 && input.charCodeAt(i + 1) === 0x2e && (length === 1 || input.charCodeAt(i + 2) === 0x2e);
    if (dot && length === 2) out = out.slice(0, Math.max(0, out.lastIndexOf('/')));
    if (length === 0 || dot) {
      // Empty and dot segments vanish; at the end they still name a directory.
      if (next === input.length) out += '/';
    } else {
      out += input.slice(i, next);
    }
    i = next;
  }
  return out;
}

function percentDecode(text: string): string {
  // Byte-wise (latin1), so that invalid UTF-8 cannot make decoding throw.
  let out = '';
  let from = 0;
  for (let i = text.indexOf('%'); i >= 0 && i + 2 < text.length; i = text.indexOf('%', i + 1)) {
    const hi = hexValue(text.charCodeAt(i + 1));
    const lo = hexValue(text.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) continue;
    out += text.slice(from, i) + String.fromCharCode(hi * 16 + lo);
    from = i + 3;
    i += 2;
  }
  return out + text.slice(from);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Host patterns: `example.com` matches that name only, `*.example.com` any
 * name below it (not example.com itself), like NGINX `server_name`.
 */
function compileHosts(patterns: readonly string[]): (host: string | undefined) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const pattern of patterns) {
    const name = hostName(pattern);
    if (name.startsWith('*.')) suffixes.push(name.slice(1));
    else exact.add(name);
  }
  return (host) => {
    if (host === undefined) return false;
    const name = hostName(host);
    if (exact.has(name)) return true;
    for (const suffix of suffixes) if (name.length > suffix.length && name.endsWith(suffix)) return true;
    return false;
  };
}

/** Lowercase host without port and trailing dot; `[v6]:port` → `[v6]`. */
export function hostName(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf(']');
    if (close > 0) end = close + 1;
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 0x2e /* . */) end--;
  return host.slice(0, end).toLowerCase();
}
