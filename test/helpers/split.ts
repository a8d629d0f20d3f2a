/**
 * Feeds one fixture to a stateless incremental parser in every way TCP could
 * deliver it: whole, one byte at a time, and split in two at every offset.
 * The parser is called on the bytes accumulated so far after each chunk, as
 * the master's peek loop does, and feeding stops at the first result that is
 * not "need more". Works for any parser whose pending answer is
 * `{ kind: 'need-more' }` (PROXY, HTTP head...).
 */

/** How one delivery of the fixture went. */
export interface FeedOutcome<R> {
  /** 'whole', 'byte-by-byte' or 'split@<offset>'. */
  readonly way: string;
  /** The result after the last call (the first non-pending one, or the last pending one). */
  readonly result: R;
  /** How many bytes had arrived when that result was given. */
  readonly decidedAt: number;
  /** Every result given before it (all pending). */
  readonly pending: readonly R[];
}

/** Chunk boundaries (cumulative lengths) for each way of delivering `length` bytes. */
function deliveries(length: number): Array<{ way: string; cuts: number[] }> {
  const ways = [{ way: 'whole', cuts: [length] }];
  const bytes: number[] = [];
  for (let n = 1; n <= length; n++) bytes.push(n);
  ways.push({ way: 'byte-by-byte', cuts: bytes.length > 0 ? bytes : [0] });
  for (let k = 1; k < length; k++) ways.push({ way: `split@${k}`, cuts: [k, length] });
  return ways;
}

/**
 * Feeds `buf` whole, byte by byte and split at every offset, calling `parse`
 * on a fresh copy of the accumulated bytes after each chunk. Returns one
 * outcome per way; the caller asserts they agree (and, for a valid fixture,
 * that `decidedAt` is the header length).
 */
export function feedAllWays<R extends { readonly kind: string }>(
  buf: Buffer,
  parse: (bytes: Buffer) => R,
  isPending: (result: R) => boolean = (result) => result.kind === 'need-more',
): Array<FeedOutcome<R>> {
  return deliveries(buf.length).map(({ way, cuts }) => {
    const pending: R[] = [];
    for (let index = 0; ; index++) {
      const cut = cuts[index] as number;
      // A fresh buffer each time, so a parser cannot lean on bytes past the end.
      const result = parse(Buffer.from(buf.subarray(0, cut)));
      if (!isPending(result) || index === cuts.length - 1) return { way, result, decidedAt: cut, pending };
      pending.push(result);
    }
  });
}
