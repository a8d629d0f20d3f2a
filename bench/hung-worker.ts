/**
 * One worker stopped (SIGSTOP) for 10 s under a request loop over 40 keys,
 * against the same loop without the stop: the latency of the other workers'
 * keys (p50, p99, max), and where the stopped worker's keys went (its next
 * slot, or waited for it), with the default heartbeat and ack timeout.
 * The stopped worker's keys are requested open-loop, so that a client
 * waiting on it does not hold up the next request.
 *
 *   npm run build && node dist/bench/hung-worker.js [seconds]
 */
import http from 'node:http';
import { join } from 'node:path';
import { ROOT, getText, startMaster } from './lib/master.js';
import { hashKey } from '../src/shared/ring/farmhash.js';
import { rankSlots } from '../src/shared/ring/rendezvous.js';
import { clientAddress } from './lib/websockets.js';

const SECONDS = Number(process.argv[2] ?? 20);
const SLOTS = 3;
const VICTIM = 1;
const STOP_AT_MS = 5000;
const STOP_FOR_MS = 10_000;

interface Sample {
  readonly at: number;
  readonly ms: number;
  readonly pid: number | null;
}

function get(port: number, key: string): Promise<{ ms: number; pid: number | null }> {
  const start = performance.now();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { 'x-forwarded-for': key }, agent: false, timeout: 15_000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ ms: performance.now() - start, pid: res.statusCode === 200 ? (JSON.parse(body) as { pid: number }).pid : null }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ ms: performance.now() - start, pid: null }));
  });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

async function run(stop: boolean): Promise<void> {
  const master = await startMaster({ workers: { count: SLOTS, app: join(ROOT, 'dist', 'workers', 'demo-app.js') } });
  try {
    const pids = (JSON.parse(await getText(master.adminPort, '/workers')) as Array<{ pid: number }>).map((worker) => worker.pid);
    const keys = Array.from({ length: 40 }, (_, i) => clientAddress(1000 + i));
    const home = (key: string): number => rankSlots(hashKey(key), SLOTS)[0] as number;
    const next = (key: string): number => rankSlots(hashKey(key), SLOTS)[1] as number;
    const victimKeys = keys.filter((key) => home(key) === VICTIM);
    const otherKeys = keys.filter((key) => home(key) !== VICTIM);
    const samples = { other: [] as Sample[], victim: [] as Array<Sample & { key: string }> };
    const begin = performance.now();
    const deadline = begin + SECONDS * 1000;
    const lane = async (list: string[], into: Sample[] | Array<Sample & { key: string }>, offset: number): Promise<void> => {
      for (let i = offset; performance.now() < deadline; i++) {
        const key = list[i % list.length] as string;
        const at = performance.now() - begin;
        const result = await get(master.port, key);
        (into as Array<Sample & { key: string }>).push({ at, ...result, key });
      }
    };
    if (stop) {
      setTimeout(() => process.kill(pids[VICTIM] as number, 'SIGSTOP'), STOP_AT_MS);
      setTimeout(() => process.kill(pids[VICTIM] as number, 'SIGCONT'), STOP_AT_MS + STOP_FOR_MS);
    }
    // The stopped worker's keys: one request every 20 ms whatever the earlier ones do (a client
    // waiting on the stopped worker must not stop the next one from being sent).
    const openLoop = async (): Promise<void> => {
      const inFlight: Array<Promise<void>> = [];
      for (let i = 0; performance.now() < deadline; i++) {
        const key = victimKeys[i % victimKeys.length] as string;
        const at = performance.now() - begin;
        inFlight.push(get(master.port, key).then((result) => void samples.victim.push({ at, ...result, key })));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await Promise.all(inFlight);
    };
    await Promise.all([...[0, 1, 2, 3, 4, 5].map((i) => lane(otherKeys, samples.other, i * 5)), openLoop()]);
    const window = (sample: Sample): boolean => sample.at >= STOP_AT_MS && sample.at < STOP_AT_MS + STOP_FOR_MS;
    const others = samples.other.filter(window).map((sample) => sample.ms);
    const failed = samples.other.filter((sample) => sample.pid === null).length;
    console.log(
      `${stop ? 'with the stop   ' : 'without the stop'}: other workers' keys during the window ${others.length} requests, p50 ${percentile(others, 50).toFixed(2)} ms, p99 ${percentile(others, 99).toFixed(2)} ms, max ${Math.max(...others).toFixed(1)} ms; ${failed} failed overall`,
    );
    if (stop) {
      const during = samples.victim.filter(window);
      const toNext = during.filter((sample) => sample.pid === pids[next(sample.key)]).length;
      const waited = during.filter((sample) => sample.pid === pids[VICTIM]);
      const after = samples.victim.filter((sample) => sample.at >= STOP_AT_MS + STOP_FOR_MS + 2000);
      console.log(
        `  its keys during the stop: ${during.length} requests, ${toNext} served by their next slot, ${waited.length} waited for it (longest ${Math.max(0, ...waited.map((s) => s.ms)).toFixed(0)} ms), ${during.filter((s) => s.pid === null).length} failed; ` +
          `from 2 s after SIGCONT: ${after.filter((s) => s.pid === pids[VICTIM]).length} of ${after.length} back on it`,
      );
    }
  } finally {
    await master.stop();
  }
}

async function main(): Promise<void> {
  console.log(`one of ${SLOTS} workers SIGSTOPped ${STOP_AT_MS / 1000}-${(STOP_AT_MS + STOP_FOR_MS) / 1000} s of a ${SECONDS} s loop (6 closed-loop lanes over the others' keys, one request every 20 ms for its own); node ${process.version}`);
  for (const stop of [false, true, false, true]) await run(stop);
}

void main();
