/**
 * CRC-32C (Castagnoli), the checksum of the PROXY v2 `PP2_TYPE_CRC32C` TLV
 * (proxy-protocol.txt 2.2.3, computed "as described in RFC 4960, Appendix B").
 * Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
 * Node has no built-in CRC-32C (zlib.crc32, since 22, is the other polynomial), so this
 * is the classic byte-at-a-time table: headers are at most 64 KiB and usually
 * under 100 bytes, so a slicing-by-8 table would not pay for itself.
 */

const CRC32C_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The running value to start a CRC-32C with (before any byte). */
export const CRC32C_INIT = 0xffffffff;

/**
 * Feeds `buf[start, end)` into a running CRC-32C state and returns the new
 * state. Start from {@link CRC32C_INIT}; finish with {@link crc32cFinish}.
 */
export function crc32cUpdate(state: number, buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = state;
  for (let i = start; i < end; i++) {
    // The table index is (crc ^ byte) & 0xff, always within 0..255.
    crc = (CRC32C_TABLE[(crc ^ (buf[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return crc;
}

/** Turns a running state into the final unsigned 32-bit checksum. */
export function crc32cFinish(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

/** CRC-32C of `buf[start, end)` as an unsigned 32-bit number. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  return crc32cFinish(crc32cUpdate(CRC32C_INIT, buf, start, end));
}
