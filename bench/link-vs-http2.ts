/**
 * The worker-to-worker link against node:http2 as the multiplexer it could be:
 * both carry many byte streams over one UNIX socket with per-stream flow
 * control. 50 streams at once, each sending a 200-byte message and waiting for
 * its echo, `rounds` times; front and back in this one process, so the CPU
 * time covers both ends. Prints round trips per second and CPU µs per round
 * trip, for each multiplexer, alternating, 3 runs each.
 *
 *   npm run build && node dist/bench/link-vs-http2.js [rounds per stream, default 400]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { listenForLinks } from '../src/worker/link/back.js';
import { linkPath } from '../src/worker/link/frames.js';
import { LinkPool, type FrontStream, type StreamUser } from '../src/worker/link/front.js';

const STREAMS = 50;
const MESSAGE = Buffer.alloc(200, 0x61);
const ROUNDS = Number(process.argv[2] ?? 400);
const BACK_PID = 1;

interface Result {
  readonly roundTrips: number;
  readonly seconds: number;
  readonly cpuUs: number;
}

/** Runs `STREAMS` ping-pong loops over `open`; each stream echoes MESSAGE back. */
async function measure(open: () => Promise<{ send: (bytes: Buffer) => void; onData: (fn: (bytes: Buffer) => void) => void; close: () => void }>): Promise<Result> {
  const streams = await Promise.all(Array.from({ length: STREAMS }, open));
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(
    streams.map(
      (stream) =>
        new Promise<void>((resolve) => {
          let left = ROUNDS;
          let got = 0;
          stream.onData((bytes) => {
            got += bytes.length;
            if (got < MESSAGE.length) return;
            got -= MESSAGE.length;
            if (--left === 0) resolve();
            else stream.send(MESSAGE);
          });
          stream.send(MESSAGE);
        }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  for (const stream of streams) stream.close();
  return { roundTrips: STREAMS * ROUNDS, seconds, cpuUs: used.user + used.system };
}

/** Our link: the back feeds each stream to a server whose 'connection' echoes. */
async function ourLink(dir: string): Promise<Result> {
  const echo = new net.Server();
  echo.on('connection', (socket: Duplex) => socket.on('data', (bytes: Buffer) => socket.write(bytes)));
  const listener = await listenForLinks(linkPath(dir, BACK_PID), { slot: 1, server: () => echo, onStreamCount: () => {} });
  const pool = new LinkPool(dir);
  try {
    return await measure(async () => {
      let onData: (bytes: Buffer) => void = () => {};
      let ready: () => void = () => {};
      const connected = new Promise<void>((resolve) => (ready = resolve));
      const user: StreamUser = {
        onStreamData: (bytes, passed) => {
          onData(bytes);
          passed();
        },
        onStreamDone() {},
        onStreamRefused() {},
        onStreamEnd() {},
        onStreamReset() {},
        onStreamUnreachable() {},
        onStreamCredit() {},
        onStreamReady: () => ready(),
      };
      const stream: FrontStream = pool.stream(BACK_PID);
      stream.user = user;
      if (!stream.connected) await connected;
      stream.sendInfo({ info: { key: 'k', keySource: 'forwarded', worker: 0, proxy: null, peer: '127.0.0.1', peerTrusted: true } });
      return { send: (bytes) => void stream.send(bytes), onData: (fn) => (onData = fn), close: () => stream.reset() };
    });
  } finally {
    pool.linkTo(BACK_PID)?.destroy();
    listener.close();
  }
}

/** node:http2 over a UNIX socket: each stream a POST whose body the server echoes. */
async function viaHttp2(dir: string): Promise<Result> {
  const path = join(dir, 'h2.sock');
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.on('data', (bytes: Buffer) => stream.write(bytes));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(path) });
  await new Promise<void>((resolve) => session.once('connect', () => resolve()));
  try {
    return await measure(async () => {
      const stream = session.request({ ':method': 'POST', ':path': '/' }, { endStream: false });
      let onData: (bytes: Buffer) => void = () => {};
      stream.on('data', (bytes: Buffer) => onData(bytes));
      return { send: (bytes) => void stream.write(bytes), onData: (fn) => (onData = fn), close: () => stream.close() };
    });
  } finally {
    session.destroy();
    server.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'link-bench-'));
  const rows: Array<{ name: string; result: Result }> = [];
  try {
    for (let run = 0; run < 3; run++) {
      rows.push({ name: 'our link', result: await ourLink(dir) });
      rows.push({ name: 'node:http2', result: await viaHttp2(dir) });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${new Date().toISOString()} · node ${process.version} · ${STREAMS} streams × ${ROUNDS} round trips of ${MESSAGE.length} bytes, both ends in one process\n`);
  console.log('| multiplexer | run | round trips/s | CPU µs per round trip |');
  console.log('|---|---:|---:|---:|');
  rows.forEach(({ name, result }, i) => console.log(`| ${name} | ${Math.floor(i / 2) + 1} | ${Math.round(result.roundTrips / result.seconds)} | ${(result.cpuUs / result.roundTrips).toFixed(1)} |`));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
