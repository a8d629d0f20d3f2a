/**
 * The byte values the parsers in src/shared/protocol and src/shared/key compare against,
 * named once (RFC 5234 core rules and the HTTP delimiters of RFC 9110 5.6).
 */
export const HTAB = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SP = 0x20;
export const DQUOTE = 0x22;
export const COMMA = 0x2c;
export const DOT = 0x2e;
export const DIGIT_0 = 0x30;
export const DIGIT_9 = 0x39;
export const COLON = 0x3a;
export const SEMICOLON = 0x3b;
export const EQUALS = 0x3d;
export const BACKSLASH = 0x5c;

/** Optional whitespace (RFC 9110 5.6.3 OWS): SP or HTAB. */
export function isOws(byte: number): boolean {
  return byte === SP || byte === HTAB;
}

/** An ASCII decimal digit. */
export function isDigit(byte: number): boolean {
  return byte >= DIGIT_0 && byte <= DIGIT_9;
}
