// Ours rather than the cookie package: finds one cookie without splitting the header, measurably faster (bench/libraries.ts).
import { DQUOTE, EQUALS, SEMICOLON, isOws } from '../protocol/ascii.js';
/**
 * The value of one named cookie in a Cookie field value (RFC 6265 section 5.4
 * for the format, 4.2.1 for the grammar), found without splitting the header:
 * a request can carry thousands of cookies and only one matters.
 */

/**
 * Returns the value of the first cookie named `name` (case-sensitive, as
 * cookie names are) in `header`, with surrounding OWS removed and surrounding
 * DQUOTEs stripped (RFC 6265 4.1.1 `cookie-value = *cookie-octet / ( DQUOTE
 * *cookie-octet DQUOTE )`). Returns null when there is no such cookie, when the
 * first one is empty, or when `name` is empty.
 *
 * Lenient like common server libraries: OWS is tolerated around `;` and
 * before `=`. A name that is a suffix or prefix of another (`sid` in `xsid`
 * or `sidx`) does not match. Work is linear in the header length.
 */
export function cookieValue(header: string, name: string): string | null {
  if (name.length === 0) return null;
  const length = header.length;
  let from = 0;
  for (;;) {
    const at = header.indexOf(name, from);
    if (at < 0) return null;
    from = at + 1;

    // Start of a pair: only OWS between the name and the previous ';' (or the start).
    let before = at - 1;
    while (before >= 0 && isOws(header.charCodeAt(before))) before--;
    if (before >= 0 && header.charCodeAt(before) !== SEMICOLON) continue;

    // The name must be followed by (OWS and) '='.
    let pos = at + name.length;
    while (pos < length && isOws(header.charCodeAt(pos))) pos++;
    if (pos === length || header.charCodeAt(pos) !== EQUALS) continue;
    pos++;

    let end = header.indexOf(';', pos);
    if (end < 0) end = length;
    while (pos < end && isOws(header.charCodeAt(pos))) pos++;
    while (end > pos && isOws(header.charCodeAt(end - 1))) end--;
    if (end - pos >= 2 && header.charCodeAt(pos) === DQUOTE && header.charCodeAt(end - 1) === DQUOTE) {
      pos++;
      end--;
    }
    return end > pos ? header.slice(pos, end) : null;
  }
}
