import { randomBytes } from 'node:crypto';
import { processStats, sendAndWaitClose, startMaster, timedGet } from './lib/master.js';

/**
 * Issue 5's soak: minutes of mixed good and hostile traffic on loopback,
 * sampling the master's RSS and descriptor count. Flat RSS and descriptors
 * back at their start value mean nothing leaks per connection.
 * Run: node dist/bench/soak.js [--seconds 180] [--concurrency 32]
 */
const HOSTILE: Array<() => Buffer | string> = [
  () => randomBytes(1 + Math.floor(Math.random() * 4096)),
  () => 'PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n',
  () => 'PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\nGET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
  () => Buffer.from('160301020001' + '0001fc0303' + '00'.repeat(32), 'hex'),
  () => `GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: ${'1.2.3.4, '.repeat(1000)}unknown\r\nconnection: close\r\n\r\n`,
  () => `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(65536)}\r\n\r\n`,
  () => 'GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 1.2', // stalls until the peek timeout
  () => '',
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const seconds = Number(args[args.indexOf('--seconds') + 1] ?? 180) || 180;
  const concurrency = Number(args[args.indexOf('--concurrency') + 1] ?? 32) || 32;
  const master = await startMaster({ limits: { peekBytes: 16384, peekTimeoutMs: 1000 } });
  const pid = master.proc.pid!;
  const samples: Array<{ t: number; fds: number; rssMB: number }> = [];
  const started = Date.now();
  const sample = (): void => {
    samples.push({ t: Math.round((Date.now() - started) / 1000), ...processStats(pid) });
  };
  sample();
  const sampler = setInterval(sample, 5000);
  let good = 0;
  let failedGood = 0;
  let hostile = 0;
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, lane) => {
      for (let i = 0; Date.now() < deadline; i++) {
        if ((i + lane) % 3 === 0) {
          hostile++;
          const make = HOSTILE[(i * 7 + lane) % HOSTILE.length] as () => Buffer | string;
          await sendAndWaitClose(master.port, make(), 5000);
        } else {
          good++;
          await timedGet(master.port, { 'x-forwarded-for': `198.51.100.${(i % 250) + 1}` }).catch(() => failedGood++);
        }
      }
    }),
  );
  clearInterval(sampler);
  await new Promise((done) => setTimeout(done, 1500));
  sample();
  await master.stop();
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const afterWarmup = samples.filter((s) => s.t >= 30);
  console.log(
    JSON.stringify(
      {
        date: new Date().toISOString(),
        seconds,
        concurrency,
        goodRequests: good,
        failedGoodRequests: failedGood,
        hostileConnections: hostile,
        start: first,
        end: last,
        rssMinMaxAfter30s: afterWarmup.length ? [Math.min(...afterWarmup.map((s) => s.rssMB)), Math.max(...afterWarmup.map((s) => s.rssMB))] : null,
        samples,
      },
      null,
      1,
    ),
  );
}

void main();
