/**
 * The hand-off round trip, one connection at a time (no queueing, so this is
 * latency, not throughput): connect, send one request with an
 * X-Forwarded-For and `Connection: close`, read the answer to the end. Through
 * ours (accept → peek → key → hash → fd + bytes over IPC → worker → app),
 * Node's cluster round-robin (accept → fd over IPC → worker → app) and one
 * process without hand-off (the floor). Blocks of connections interleaved
 * between contenders; prints p50/p90/p99 and the median's excess over the
 * floor. For ours it also reads the master's own `sticky_handoff_seconds`
 * (accept to the worker's ack) from the admin metrics.
 *
 *   npm run build && node dist/bench/handoff.js [connections per contender, default 3000]
 */
import net from 'node:net';
import { CONTENDERS, type Running } from './apps/contenders.js';
import { getText } from './lib/master.js';

const TOTAL = Math.max(100, Number(process.argv[2] ?? 3000) | 0);
const BLOCK = 100;
const NAMES = ['ours', 'cluster-rr', 'single'];

/** One connection's round trip in µs; rejects after 5 s. */
function roundTrip(port: number, xff: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const socket = net.connect(port, '127.0.0.1');
    let bytes = 0;
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
    socket.on('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: bench\r\nX-Forwarded-For: ${xff}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('error', reject);
    socket.on('end', () => {
      socket.destroy();
      if (bytes === 0) reject(new Error('empty answer'));
      else resolve(Number(process.hrtime.bigint() - start) / 1000);
    });
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}


async function handoffHistogram(port: number): Promise<{ sum: number; count: number }> {
  const text = await getText(port, '/metrics');
  const sum = Number(/^sticky_handoff_seconds_sum (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
  const count = Number(/^sticky_handoff_seconds_count (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
  return { sum, count };
}

async function main(): Promise<void> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const workdir = mkdtempSync(join(tmpdir(), 'sticky-handoff-'));
  const running = new Map<string, Running>();
  const samples = new Map<string, number[]>();
  let failures = 0;
  try {
    for (const name of NAMES) {
      const contender = CONTENDERS.find((c) => c.name === name);
      if (!contender) continue;
      running.set(name, await contender.start(workdir));
      samples.set(name, []);
    }
    // Warm-up, not recorded.
    for (const [, target] of running) for (let i = 0; i < 200; i++) await roundTrip(target.port, `198.18.0.${i % 250}`).catch(() => undefined);
    const ours = running.get('ours');
    const before = ours?.adminPort ? await handoffHistogram(ours.adminPort) : null;
    let i = 0;
    for (let block = 0; block * BLOCK < TOTAL; block++) {
      const names = [...running.keys()];
      for (let k = 0; k < names.length; k++) {
        const name = names[(k + block) % names.length] as string;
        const target = running.get(name) as Running;
        const list = samples.get(name) as number[];
        for (let j = 0; j < BLOCK; j++, i++) {
          try {
            list.push(await roundTrip(target.port, `198.18.${(i >> 8) & 3}.${i & 255}`));
          } catch {
            failures++;
          }
        }
      }
    }
    const after = ours?.adminPort ? await handoffHistogram(ours.adminPort) : null;
    const floor = percentile([...(samples.get('single') ?? [])].sort((a, b) => a - b), 50);
    console.log(`hand-off round trip, ${TOTAL} sequential connections per contender (blocks of ${BLOCK}, interleaved); node ${process.version}\n`);
    console.log('| contender | p50 µs | p90 µs | p99 µs | p50 − one process |');
    console.log('|---|---:|---:|---:|---:|');
    for (const [name, list] of samples) {
      const sorted = [...list].sort((a, b) => a - b);
      const p50 = percentile(sorted, 50);
      console.log(`| ${name} | ${p50.toFixed(0)} | ${percentile(sorted, 90).toFixed(0)} | ${percentile(sorted, 99).toFixed(0)} | ${name === 'single' ? '—' : (p50 - floor).toFixed(0)} |`);
    }
    if (before && after) {
      const count = after.count - before.count;
      console.log(`\nours, master's accept → worker ack (sticky_handoff_seconds): mean ${(((after.sum - before.sum) / count) * 1e6).toFixed(0)} µs over ${count} hand-offs`);
    }
    if (failures > 0) console.log(`\n${failures} round trips failed`);
  } finally {
    await Promise.all([...running.values()].map((r) => r.stop()));
    rmSync(workdir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
