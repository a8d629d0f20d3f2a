// Ours rather than net.BlockList: measurably faster for the master's per-connection trust check (bench/libraries.ts).
/**
 * IP address text → canonical form, and CIDR lists. Pure string code: no
 * `node:net` here, because the master calls this for every connection (the TCP
 * peer, the X-Forwarded-For entry) and a hand-written scanner over char codes
 * is several times cheaper than a regular expression or a libuv round-trip.
 *
 * Canonical forms:
 * - IPv4: dotted decimal, four decimal parts 0-255 without leading zeros
 *   (`010.0.0.1` is refused, as `net.isIP` does: leading zeros are octal to
 *   inet_aton and decimal to others, so the text is ambiguous).
 * - IPv6: RFC 5952 section 4: lowercase hex, no leading zeros in a group, the
 *   longest run (first on a tie) of two or more zero groups written `::`.
 * - IPv4-mapped IPv6 (`::ffff:0:0/96`, RFC 4291 2.5.5.2) becomes its IPv4 form,
 *   so a dual-stack socket's `::ffff:203.0.113.5` and `203.0.113.5` are one
 *   client.
 */

/** `%` then the zone id; same characters `net.isIP` accepts (Node 20 lib/internal/net.js). */
function isZoneChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x3a // :
  );
}

/** Value of a hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Parses strict dotted-decimal IPv4 in `text[start, end)`. Returns the address
 * as an unsigned 32-bit number, or -1.
 */
function parseIPv4(text: string, start: number, end: number): number {
  let value = 0;
  let parts = 0;
  let pos = start;
  while (parts < 4) {
    const partStart = pos;
    let part = 0;
    while (pos < end) {
      const c = text.charCodeAt(pos);
      if (c < 0x30 || c > 0x39) break;
      part = part * 10 + (c - 0x30);
      pos++;
    }
    const digits = pos - partStart;
    if (digits === 0 || digits > 3 || part > 255) return -1;
    if (digits > 1 && text.charCodeAt(partStart) === 0x30) return -1; // leading zero
    value = value * 256 + part;
    parts++;
    if (parts < 4) {
      if (pos >= end || text.charCodeAt(pos) !== 0x2e) return -1;
      pos++;
    }
  }
  return pos === end ? value : -1;
}

/**
 * Parses IPv6 text (no brackets, no zone) in `text[start, end)` into eight
 * 16-bit groups. Accepts `::` compression (standing for at least one zero
 * group, RFC 4291 2.2) and a trailing embedded IPv4 (`::ffff:1.2.3.4`).
 */
function parseIPv6(text: string, start: number, end: number, out: Uint16Array): boolean {
  let count = 0;
  let gap = -1;
  let pos = start;
  if (end - start < 2) return false;
  if (text.charCodeAt(pos) === 0x3a) {
    if (text.charCodeAt(pos + 1) !== 0x3a) return false;
    gap = 0;
    pos += 2;
  }
  while (pos < end) {
    if (count === 8) return false;
    const pieceStart = pos;
    let piece = 0;
    while (pos < end && pos - pieceStart < 5) {
      const v = hexValue(text.charCodeAt(pos));
      if (v < 0) break;
      piece = piece * 16 + v;
      pos++;
    }
    const digits = pos - pieceStart;
    if (pos < end && text.charCodeAt(pos) === 0x2e) {
      // Embedded IPv4 takes the last two groups and must end the text.
      if (count > 6) return false;
      const v4 = parseIPv4(text, pieceStart, end);
      if (v4 < 0) return false;
      out[count++] = v4 >>> 16;
      out[count++] = v4 & 0xffff;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    out[count++] = piece;
    if (pos === end) break;
    if (text.charCodeAt(pos) !== 0x3a) return false;
    pos++;
    if (pos < end && text.charCodeAt(pos) === 0x3a) {
      if (gap >= 0) return false; // two "::"
      gap = count;
      pos++;
    } else if (pos === end) {
      return false; // trailing single ':'
    }
  }
  if (gap < 0) return count === 8;
  if (count > 7) return false; // "::" must stand for at least one group
  // Move the groups after the gap to the end and zero the gap.
  const tail = count - gap;
  for (let i = 0; i < tail; i++) out[7 - i] = out[count - 1 - i] as number;
  for (let i = gap; i < 8 - tail; i++) out[i] = 0;
  return true;
}

/** Result of {@link parseAddress}: not an address, IPv4 (groups hold the mapped form), or IPv6. */
type Family = 0 | 4 | 6;

/**
 * Parses any accepted text form into `out` (eight groups; IPv4 is stored as
 * `::ffff:a.b.c.d`). Brackets are accepted around IPv6 only; a zone id only on
 * IPv6 and only with the characters Node's `net.isIP` accepts.
 */
function parseAddress(text: string, out: Uint16Array): Family {
  let start = 0;
  let end = text.length;
  let bracketed = false;
  if (end > 0 && text.charCodeAt(0) === 0x5b) {
    if (text.charCodeAt(end - 1) !== 0x5d) return 0;
    start = 1;
    end -= 1;
    bracketed = true;
  }
  if (!bracketed) {
    const v4 = parseIPv4(text, start, end);
    if (v4 >= 0) {
      out[0] = out[1] = out[2] = out[3] = out[4] = 0;
      out[5] = 0xffff;
      out[6] = v4 >>> 16;
      out[7] = v4 & 0xffff;
      return 4;
    }
  }
  const zone = text.indexOf('%', start);
  if (zone >= 0 && zone < end) {
    if (zone + 1 === end) return 0;
    for (let i = zone + 1; i < end; i++) if (!isZoneChar(text.charCodeAt(i))) return 0;
    end = zone;
  }
  return parseIPv6(text, start, end, out) ? 6 : 0;
}

/** True when the groups are an IPv4-mapped address (`::ffff:0:0/96`). */
function isMapped(g: Uint16Array): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

function formatMappedIPv4(g: Uint16Array): string {
  const hi = g[6] as number;
  const lo = g[7] as number;
  return `${hi >>> 8}.${hi & 0xff}.${lo >>> 8}.${lo & 0xff}`;
}

/**
 * Eight 16-bit groups as IPv6 text (RFC 5952 section 4): lowercase, no
 * leading zeros, the longest run of two or more zero groups (the first on a
 * tie) as "::". With `dottedTail`, an IPv4-mapped (`::ffff:a.b.c.d`) or
 * IPv4-compatible (`::a.b.c.d`) address ends in dotted decimal, as Node spells
 * `socket.remoteAddress` (libuv's inet_ntop6).
 */
export function formatIPv6Groups(g: ArrayLike<number>, dottedTail: boolean): string {
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not compressed (RFC 5952 4.2.2)
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const tail = dottedTail && bestStart === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff));
  const last = tail ? 6 : 8;
  let out = '';
  for (let i = 0; i < last; i++) {
    if (i === bestStart) {
      out += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    out += (g[i] as number).toString(16);
    if (i < last - 1) out += ':';
  }
  if (!tail) return out;
  const hi = g[6] as number;
  const lo = g[7] as number;
  return `${out.endsWith(':') ? out : `${out}:`}${hi >>> 8}.${hi & 0xff}.${lo >>> 8}.${lo & 0xff}`;
}

/** Scratch groups for {@link canonicalIp}: the module is synchronous, so one buffer is enough. */
const scratch = new Uint16Array(8);

/**
 * Parses an IP address text into canonical form: IPv4 dotted decimal; IPv6
 * lowercase RFC 5952 compressed form; an IPv4-mapped IPv6 (`::ffff:1.2.3.4` or
 * `::ffff:102:304`) becomes its IPv4 form. Accepts surrounding brackets
 * (`[::1]`, IPv6 only) and strips an IPv6 zone id (`fe80::1%eth0` → `fe80::1`).
 * Returns null for anything that is not an address (hostnames, `unknown`,
 * `_obfuscated`, empty, garbage, surrounding whitespace, CR/LF/NUL, a port).
 *
 * Validity matches `net.isIP` for text without brackets: the same strings are
 * accepted, except that this function also takes the bracketed form.
 */
export function canonicalIp(text: string): string | null {
  const family = parseAddress(text, scratch);
  if (family === 0) return null;
  // A strictly parsed plain IPv4 text is already canonical: no allocation.
  if (family === 4) return text;
  return isMapped(scratch) ? formatMappedIPv4(scratch) : formatIPv6Groups(scratch, false);
}

/** Parses a CIDR prefix length "0".."max" (decimal, no sign, no leading zeros), or -1. */
function parsePrefixLength(text: string, max: number): number {
  if (text.length === 0 || text.length > 3) return -1;
  if (text.length > 1 && text.charCodeAt(0) === 0x30) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n <= max ? n : -1;
}

/** The four 32-bit words of a 128-bit address held as eight groups. */
function wordAt(g: Uint16Array, word: number): number {
  return (((g[word * 2] as number) << 16) | (g[word * 2 + 1] as number)) >>> 0;
}

/**
 * A parsed CIDR list, e.g. `["127.0.0.0/8", "::1/128", "10.0.0.1"]` (a bare
 * address is a host route). Every range is held as a 128-bit IPv6 range, IPv4
 * ones inside `::ffff:0:0/96`, so IPv4-mapped IPv6 addresses match IPv4 ranges
 * and `::/0` matches every address.
 */
export class CidrList {
  /** Per range: four network words then four mask words. */
  private readonly words: Uint32Array;
  private readonly scratch = new Uint16Array(8);

  private constructor(words: Uint32Array) {
    this.words = words;
  }

  /**
   * Parses CIDR entries. Host bits set below the prefix are cleared
   * (`10.1.2.3/8` means `10.0.0.0/8`), as most network tools do.
   * @throws Error naming the bad entry: a configuration error.
   */
  static parse(entries: readonly string[]): CidrList {
    const words = new Uint32Array(entries.length * 8);
    const g = new Uint16Array(8);
    entries.forEach((entry, index) => {
      const slash = entry.indexOf('/');
      const addressText = slash < 0 ? entry : entry.slice(0, slash);
      const family = parseAddress(addressText, g);
      // A zone id names an interface, not a range: refuse it in configuration.
      if (family === 0 || addressText.includes('%')) {
        throw new Error(`invalid CIDR entry ${JSON.stringify(entry)}: not an IP address`);
      }
      const max = family === 4 ? 32 : 128;
      let prefix = max;
      if (slash >= 0) {
        prefix = parsePrefixLength(entry.slice(slash + 1), max);
        if (prefix < 0) {
          throw new Error(
            `invalid CIDR entry ${JSON.stringify(entry)}: prefix length must be an integer 0..${max}`,
          );
        }
      }
      if (family === 4) prefix += 96;
      for (let w = 0; w < 4; w++) {
        const bits = Math.max(0, Math.min(32, prefix - w * 32));
        const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
        words[index * 8 + w] = (wordAt(g, w) & mask) >>> 0;
        words[index * 8 + 4 + w] = mask;
      }
    });
    return new CidrList(words);
  }

  /** True when `address` (any text form {@link canonicalIp} accepts) is in a range; false for non-addresses. */
  contains(address: string): boolean {
    const g = this.scratch;
    if (parseAddress(address, g) === 0) return false;
    const a0 = wordAt(g, 0);
    const a1 = wordAt(g, 1);
    const a2 = wordAt(g, 2);
    const a3 = wordAt(g, 3);
    const w = this.words;
    for (let i = 0; i < w.length; i += 8) {
      if (
        ((a0 & (w[i + 4] as number)) >>> 0) === w[i] &&
        ((a1 & (w[i + 5] as number)) >>> 0) === w[i + 1] &&
        ((a2 & (w[i + 6] as number)) >>> 0) === w[i + 2] &&
        ((a3 & (w[i + 7] as number)) >>> 0) === w[i + 3]
      ) {
        return true;
      }
    }
    return false;
  }
}
