/**
 * Many nodes: what the forwarding hop costs. Two nodes on 127.0.0.2 and
 * 127.0.0.3 (static members, one worker each); every connection enters node A
 * with a PROXY v2 header for a synthetic client, and the client is either one
 * that A owns ("direct": accept → peek → hand-off) or one that B owns
 * ("forwarded": accept → peek → connect to B's peer port → pump; B hands it
 * off). Measured, blocks interleaved between the two:
 *  1. one connection at a time (latency without queueing): p50/p90/p99;
 *  2. 50 connections at a time for 3 s per round: connections per second, p99,
 *     and node A's master CPU per connection (/proc/<pid>/stat);
 *  3. a 4 MiB POST /echo, direct and forwarded: MB/s through the pump;
 *  4. whether the pump on A's event loop slows A's own hand-offs: direct round
 *     trips one at a time while 20 loops of forwarded connections run through
 *     A, against the same with 20 loops of direct connections.
 *
 *   npm run build && node dist/bench/cluster.js [rounds, default 3]
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { encodeProxyV2 } from '../src/shared/protocol/proxy.js';
import { getText, median, startMaster, type BenchMaster } from './lib/master.js';

const ROUNDS = Math.max(1, Number(process.argv[2] ?? 3) | 0);
const HOSTS = ['127.0.0.2', '127.0.0.3'] as const;
const SEQUENTIAL = 1000;
const BLOCK = 100;
const CONCURRENCY = 50;
const LOAD_MS = 3000;
const ECHO_BYTES = 4 * 1024 * 1024;
const ECHOES = 10;

type Kind = 'direct' | 'forwarded';

/** One request on a fresh connection to `host:port` with a PROXY v2 header for `client`; resolves with µs. */
function roundTrip(host: string, port: number, client: string, body: Buffer | null = null): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const socket = net.connect({ host, port, noDelay: true });
    let bytes = 0;
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    const header = encodeProxyV2({ family: 'TCP4', source: { address: client, port: 1024 + Math.floor(Math.random() * 60_000) }, destination: { address: host, port } });
    const head =
      body === null
        ? `GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n`
        : `POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    socket.on('connect', () => {
      socket.write(Buffer.concat([header, Buffer.from(head)]));
      if (body !== null) socket.write(body);
    });
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('error', reject);
    socket.on('end', () => {
      socket.destroy();
      if (bytes === 0 || (body !== null && bytes < body.length)) reject(new Error(`short answer (${bytes} bytes)`));
      else resolve(Number(process.hrtime.bigint() - start) / 1000);
    });
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** user + system CPU of a process, in µs (Linux /proc, 100 ticks per second). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Client addresses that node A owns and that node B owns, asked from A's admin API. */
async function partition(a: BenchMaster, count: number): Promise<Record<Kind, string[]>> {
  const self = `${HOSTS[0]}:${peerPortOf(a)}`;
  const out: Record<Kind, string[]> = { direct: [], forwarded: [] };
  for (let i = 0; out.direct.length < count || out.forwarded.length < count; i++) {
    const client = `198.18.${(i >> 8) & 255}.${i & 255}`;
    const { node } = JSON.parse(await getText(a.adminPort, `/owner?key=${client}`)) as { node: string };
    const list = node === self ? out.direct : out.forwarded;
    if (list.length < count) list.push(client);
  }
  return out;
}

const peerPorts = new WeakMap<BenchMaster, number>();
const peerPortOf = (node: BenchMaster): number => peerPorts.get(node) as number;

/** Runs `width` loops of round trips through A for `ms`, or until `stop()`; resolves with every latency. */
async function load(a: BenchMaster, clients: readonly string[], width: number, ms: number, stop: () => boolean = () => false): Promise<{ latencies: number[]; failures: number }> {
  const latencies: number[] = [];
  let failures = 0;
  const end = Date.now() + ms;
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (Date.now() < end && !stop()) {
        try {
          latencies.push(await roundTrip(HOSTS[0], a.port, clients[next++ % clients.length] as string));
        } catch {
          failures++;
        }
      }
    }),
  );
  return { latencies, failures };
}

async function main(): Promise<void> {
  const peerPort = 18_181 + Math.floor(Math.random() * 1000);
  const members = HOSTS.map((host) => `${host}:${peerPort}`);
  const nodes = await Promise.all(
    HOSTS.map((host, index) =>
      startMaster({
        listen: { host, port: 0 },
        workers: { count: 1 },
        proxyProtocol: { mode: 'required', trustedFrom: ['127.0.0.0/8'] },
        cluster: { self: members[index], peer: { host, port: peerPort, trustedFrom: ['127.0.0.0/8'] }, members },
      }),
    ),
  );
  for (const node of nodes) peerPorts.set(node, peerPort);
  const [a, b] = nodes as [BenchMaster, BenchMaster];
  try {
    const clients = await partition(a, 500);
    const kinds: Kind[] = ['direct', 'forwarded'];
    // Warm-up, not recorded.
    for (const kind of kinds) for (let i = 0; i < 300; i++) await roundTrip(HOSTS[0], a.port, clients[kind][i % 500] as string);

    console.log(`many nodes: direct vs forwarded through node A; node ${process.version}, ${ROUNDS} rounds, 2 nodes × 1 worker on one 2-core machine\n`);

    // 1. Latency, one connection at a time.
    const sequential: Record<Kind, number[]> = { direct: [], forwarded: [] };
    for (let block = 0; block * BLOCK < SEQUENTIAL; block++) {
      for (const kind of block % 2 ? [...kinds].reverse() : kinds) {
        for (let j = 0; j < BLOCK; j++) sequential[kind].push(await roundTrip(HOSTS[0], a.port, clients[kind][(block * BLOCK + j) % 500] as string));
      }
    }
    console.log(`1. one connection at a time, ${SEQUENTIAL} each (blocks of ${BLOCK}, interleaved)\n`);
    console.log('| path | p50 µs | p90 µs | p99 µs |');
    console.log('|---|---:|---:|---:|');
    for (const kind of kinds) {
      const sorted = [...sequential[kind]].sort((x, y) => x - y);
      console.log(`| ${kind} | ${percentile(sorted, 50).toFixed(0)} | ${percentile(sorted, 90).toFixed(0)} | ${percentile(sorted, 99).toFixed(0)} |`);
    }
    const p = (kind: Kind, q: number): number => percentile([...sequential[kind]].sort((x, y) => x - y), q);
    console.log(`\nthe hop adds ${(p('forwarded', 50) - p('direct', 50)).toFixed(0)} µs at p50, ${(p('forwarded', 99) - p('direct', 99)).toFixed(0)} µs at p99\n`);

    // 2. Throughput at 50 connections at a time, with node A's master CPU per connection.
    const rates: Record<Kind, number[]> = { direct: [], forwarded: [] };
    const p99s: Record<Kind, number[]> = { direct: [], forwarded: [] };
    const cpuA: Record<Kind, number[]> = { direct: [], forwarded: [] };
    const cpuB: Record<Kind, number[]> = { direct: [], forwarded: [] };
    let failures = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of round % 2 ? [...kinds].reverse() : kinds) {
        const [beforeA, beforeB] = [cpuMicros(a.proc.pid as number), cpuMicros(b.proc.pid as number)];
        const started = Date.now();
        const run = await load(a, clients[kind], CONCURRENCY, LOAD_MS);
        const seconds = (Date.now() - started) / 1000;
        failures += run.failures;
        rates[kind].push(run.latencies.length / seconds);
        p99s[kind].push(percentile([...run.latencies].sort((x, y) => x - y), 99));
        cpuA[kind].push((cpuMicros(a.proc.pid as number) - beforeA) / run.latencies.length);
        cpuB[kind].push((cpuMicros(b.proc.pid as number) - beforeB) / run.latencies.length);
      }
    }
    console.log(`2. ${CONCURRENCY} connections at a time, ${LOAD_MS / 1000} s per round, medians of ${ROUNDS} interleaved rounds\n`);
    console.log("| path | connections/s | p99 ms | node A master CPU µs/conn | node B master CPU µs/conn |");
    console.log('|---|---:|---:|---:|---:|');
    for (const kind of kinds) {
      console.log(`| ${kind} | ${median(rates[kind]).toFixed(0)} | ${(median(p99s[kind]) / 1000).toFixed(2)} | ${median(cpuA[kind]).toFixed(0)} | ${median(cpuB[kind]).toFixed(0)} |`);
    }
    console.log(`\nforwarded / direct: ${(median(rates.forwarded) / median(rates.direct)).toFixed(2)} × the rate${failures ? `; ${failures} failed` : ''}\n`);

    // 3. Bulk bytes through the pump.
    const body = Buffer.alloc(ECHO_BYTES, 'x');
    const echo: Record<Kind, number[]> = { direct: [], forwarded: [] };
    for (let i = 0; i < ECHOES; i++) for (const kind of i % 2 ? [...kinds].reverse() : kinds) echo[kind].push(await roundTrip(HOSTS[0], a.port, clients[kind][i] as string, body));
    console.log(`3. POST /echo of ${ECHO_BYTES / 1048576} MiB (both ways through the pump when forwarded), median of ${ECHOES}\n`);
    console.log('| path | ms | MB/s each way |');
    console.log('|---|---:|---:|');
    for (const kind of kinds) console.log(`| ${kind} | ${(median(echo[kind]) / 1000).toFixed(1)} | ${(ECHO_BYTES / median(echo[kind])).toFixed(0)} |`);

    // 4. A's own hand-offs while it pumps, against while it hands off the same number of its own.
    console.log(`\n4. node A's direct hand-offs, one at a time, while 20 loops of other connections run through A, ${ROUNDS} rounds\n`);
    console.log('| background | p50 µs | p99 µs | background connections/s |');
    console.log('|---|---:|---:|---:|');
    const under: Record<Kind, { p50: number[]; p99: number[]; rate: number[] }> = { direct: { p50: [], p99: [], rate: [] }, forwarded: { p50: [], p99: [], rate: [] } };
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of round % 2 ? [...kinds].reverse() : kinds) {
        let done = false;
        const started = Date.now();
        const background = load(a, clients[kind].slice(250), 20, LOAD_MS * 2, () => done);
        const probes: number[] = [];
        for (let i = 0; i < 300; i++) probes.push(await roundTrip(HOSTS[0], a.port, clients.direct[i % 250] as string));
        done = true;
        const run = await background;
        const sorted = probes.sort((x, y) => x - y);
        under[kind].p50.push(percentile(sorted, 50));
        under[kind].p99.push(percentile(sorted, 99));
        under[kind].rate.push(run.latencies.length / ((Date.now() - started) / 1000));
      }
    }
    for (const kind of kinds) console.log(`| ${kind} | ${median(under[kind].p50).toFixed(0)} | ${median(under[kind].p99).toFixed(0)} | ${median(under[kind].rate).toFixed(0)} |`);
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
