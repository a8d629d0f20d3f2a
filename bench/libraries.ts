/**
 * Where a well-kept library or a core API could replace code of ours, the two
 * side by side on the master's hot path (ns per call, best of 5 runs):
 * - CIDR trust: our CidrList.contains against net.BlockList.check, for the
 *   peer of every connection (an IPv4 peer, an IPv6 peer, IPv4-mapped IPv6);
 * - the key cookie: our cookieValue against the `cookie` package's parse, for
 *   a browser's Cookie field with the session cookie in the middle.
 *
 *   npm run build && node dist/bench/libraries.js [iterations]
 */
import { BlockList, isIPv6 } from 'node:net';
import { parse as parseCookie } from 'cookie';
import { CidrList } from '../src/shared/ip/address.js';
import { cookieValue } from '../src/shared/key/cookie.js';

const iterations = Number(process.argv[2] ?? 2_000_000);

/** Nanoseconds per call of `fn` over `inputs`, the best of 5 runs (the first warms up the JIT). */
function nsPerCall<T>(inputs: readonly T[], fn: (input: T) => unknown): number {
  let best = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let run = 0; run < 5; run++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) if (fn(inputs[i % inputs.length] as T)) sink++;
    best = Math.min(best, Number(process.hrtime.bigint() - started) / iterations);
  }
  if (sink < 0) console.log(sink);
  return best;
}

const TRUSTED = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', '::1/128', 'fd00::/8'];
const ours = CidrList.parse(TRUSTED);
const blockList = new BlockList();
for (const entry of TRUSTED) {
  const [address, prefix] = entry.split('/') as [string, string];
  blockList.addSubnet(address, Number(prefix), isIPv6(address) ? 'ipv6' : 'ipv4');
}
const peers = ['10.1.2.3', '203.0.113.9', '::1', '2001:db8::5', '::ffff:192.168.1.1'];
// BlockList needs the family, and does not match an IPv4-mapped IPv6 against IPv4 subnets: the caller converts first.
const blockListCheck = (peer: string): boolean => {
  const mapped = peer.startsWith('::ffff:') ? peer.slice(7) : peer;
  return blockList.check(mapped, isIPv6(mapped) ? 'ipv6' : 'ipv4');
};
for (const peer of peers) if (ours.contains(peer) !== blockListCheck(peer)) throw new Error(`CidrList and BlockList disagree on ${peer}`);

const COOKIES = ['_ga=GA1.2.1234567890.1700000000; theme=dark; sid=s%3A9f8e7d6c5b4a39281706f5e4d3c2b1a0; lang=en; _gid=GA1.2.987654321.1700000000'];
// The key is the value as sent: the package decodes %XX unless told not to.
const RAW = { decode: (value: string) => value };
for (const header of COOKIES) if (cookieValue(header, 'sid') !== parseCookie(header, RAW).sid) throw new Error('cookieValue and cookie.parse disagree');

const rows = [
  ['CIDR trust (6 ranges, 5 peers)', nsPerCall(peers, (peer) => ours.contains(peer)), nsPerCall(peers, blockListCheck), 'net.BlockList.check'],
  ['session cookie of a 5-cookie header', nsPerCall(COOKIES, (header) => cookieValue(header, 'sid')), nsPerCall(COOKIES, (header) => parseCookie(header, RAW).sid), 'cookie.parse'],
] as const;
console.log(`${new Date().toISOString()} · node ${process.version} · ${iterations} calls per run, best of 5\n`);
console.log('| what | ours, ns | library, ns | library |');
console.log('|---|---:|---:|---|');
for (const [what, mine, theirs, library] of rows) console.log(`| ${what} | ${mine.toFixed(1)} | ${theirs.toFixed(1)} | ${library} |`);
