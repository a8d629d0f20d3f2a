import net from 'node:net';
import { median, processStats, startMaster, timedGet } from './lib/master.js';

/**
 * Issue 5's slowloris measurement: other clients' median latency with 1000
 * silent or half-sent clients connected, against the unloaded median, and how
 * long after connecting each of the 1000 is closed (target: within
 * peekTimeoutMs + 1 s). Run: node dist/bench/slowloris.js [--stalled 1000] [--samples 300]
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const stalledCount = Number(args[args.indexOf('--stalled') + 1] ?? 1000) || 1000;
  const samples = Number(args[args.indexOf('--samples') + 1] ?? 300) || 300;
  const peekTimeoutMs = 2000;
  const master = await startMaster({ limits: { peekBytes: 16384, peekTimeoutMs } });
  const before = processStats(master.proc.pid!);

  const measure = async (): Promise<number> => {
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) latencies.push(await timedGet(master.port, { 'x-forwarded-for': `198.51.100.${(i % 250) + 1}` }));
    return median(latencies);
  };
  await measure(); // warm-up
  const unloaded = await measure();

  const closeDelays: number[] = [];
  const stalled: Array<Promise<void>> = [];
  for (let i = 0; i < stalledCount; i++) {
    stalled.push(
      new Promise((done) => {
        const socket = net.connect({ port: master.port, host: '127.0.0.1' }, () => {
          const openedAt = Date.now();
          if (i % 2) socket.write('GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 1.2');
          socket.on('close', () => {
            closeDelays.push(Date.now() - openedAt);
            done();
          });
        });
        socket.on('data', () => {});
        socket.on('error', () => {});
        // Bound: a connection still open after 3 × the peek timeout is counted as a failure.
        setTimeout(() => socket.destroy(), peekTimeoutMs * 3).unref();
      }),
    );
  }
  const loaded = await measure();
  const during = processStats(master.proc.pid!);
  await Promise.all(stalled);
  await new Promise((done) => setTimeout(done, 500));
  const after = processStats(master.proc.pid!);
  await master.stop();
  const result = {
    date: new Date().toISOString(),
    stalledClients: stalledCount,
    peekTimeoutMs,
    unloadedMedianMs: Number(unloaded.toFixed(3)),
    loadedMedianMs: Number(loaded.toFixed(3)),
    ratio: Number((loaded / unloaded).toFixed(2)),
    closedWithinTimeoutPlus1s: closeDelays.filter((ms) => ms <= peekTimeoutMs + 1000).length,
    maxCloseDelayMs: Math.max(...closeDelays),
    masterBefore: before,
    masterDuring: during,
    masterAfter: after,
  };
  console.log(JSON.stringify(result, null, 2));
}

void main();
