/**
 * What limits.perClient costs through the balancer: the hand-off rate and
 * the CPU per connection or request (master + workers, from /proc/<pid>/stat),
 * limits off against every limit on (none reached), with 1000 distinct
 * X-Forwarded-For clients (bench/apps/xff.lua). Both balancers run at once
 * (the idle one costs nothing) and the rounds alternate which one goes first.
 *
 *   npm run build && node dist/bench/limits.js [rounds] [seconds]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, getText, median, startMaster, type BenchMaster } from './lib/master.js';

const ROUNDS = Number(process.argv[2] ?? 7);
const SECONDS = Number(process.argv[3] ?? 4);
const LUA = join(ROOT, 'bench', 'apps', 'xff.lua');
/** Every connection and request is checked, and none is refused (or the perClient object in LIMITS_JSON, to split the cost). */
const LIMITS = { perClient: process.env.LIMITS_JSON ? (JSON.parse(process.env.LIMITS_JSON) as object) : { maxConnections: 10_000, connectionsPerSecond: 1_000_000, requestsPerSecond: 1_000_000 } };
/** `close` or `random` in SHAPES (comma-separated) to run one shape only. */
const SHAPES = (process.env.SHAPES ?? 'close,random').split(',') as Array<'close' | 'random'>;

/** CPU seconds (user + system) of a process so far, from /proc/<pid>/stat (utime and stime, fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function pids(master: BenchMaster): Promise<number[]> {
  const workers = JSON.parse(await getText(master.adminPort, '/workers')) as Array<{ pid: number }>;
  return [master.proc.pid as number, ...workers.map((worker) => worker.pid)];
}

interface Result {
  rps: number;
  /** CPU µs per request over the master and the workers, and the master's share of it. */
  cpuUs: number;
  masterUs: number;
}

/** One wrk run: requests per second, and CPU µs per request over the balancer's processes (the master first). */
function run(port: number, processes: readonly number[], shape: 'close' | 'random'): Result {
  const before = processes.map(cpuSeconds);
  const out = execFileSync('wrk', ['-t1', '-c50', `-d${SECONDS}s`, '-s', LUA, `http://127.0.0.1:${port}/`, '--', shape === 'close' ? 'close' : 'random'], { encoding: 'utf8' });
  const spent = processes.map((pid, i) => cpuSeconds(pid) - (before[i] as number));
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  if (/Non-2xx|Socket errors/.test(out)) console.log(out);
  const perRequestUs = (seconds: number): number => (seconds / requests) * 1e6;
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), cpuUs: perRequestUs(spent.reduce((a, b) => a + b, 0)), masterUs: perRequestUs(spent[0] as number) };
}

async function main(): Promise<void> {
  const off = await startMaster();
  const on = await startMaster({ limits: LIMITS });
  try {
    const processes = new Map([
      [off, await pids(off)],
      [on, await pids(on)],
    ]);
    console.log(`limits.perClient off vs on (${JSON.stringify(LIMITS.perClient)}), wrk -t1 -c50 -d${SECONDS}s, 1000 X-Forwarded-For clients, ${ROUNDS} alternating rounds; node ${process.version}`);
    for (const shape of SHAPES) {
      const label = shape === 'close' ? 'new connection per request' : 'keep-alive, random client per request';
      for (const master of [off, on]) run(master.port, processes.get(master) as number[], shape); // warm-up, not counted
      const results = { off: [] as Result[], on: [] as Result[] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
          const master = name === 'off' ? off : on;
          const result = run(master.port, processes.get(master) as number[], shape);
          results[name].push(result);
          console.log(`${label}, round ${round + 1}, limits ${name.padEnd(3)}: ${result.rps.toFixed(0)} req/s, ${result.cpuUs.toFixed(1)} µs CPU per request (master ${result.masterUs.toFixed(1)})`);
        }
      }
      const rate = results.on.map((r, i) => r.rps / (results.off[i] as { rps: number }).rps);
      const cpu = results.on.map((r, i) => r.cpuUs / (results.off[i] as { cpuUs: number }).cpuUs);
      console.log(
        `${label}: rate on/off per round ${rate.map((x) => x.toFixed(3)).join(', ')}, median ${median(rate).toFixed(3)}; ` +
          `CPU on/off per round ${cpu.map((x) => x.toFixed(3)).join(', ')}, median ${median(cpu).toFixed(3)} ` +
          `(medians off ${median(results.off.map((r) => r.rps)).toFixed(0)} req/s ${median(results.off.map((r) => r.cpuUs)).toFixed(1)} µs, ` +
          `on ${median(results.on.map((r) => r.rps)).toFixed(0)} req/s ${median(results.on.map((r) => r.cpuUs)).toFixed(1)} µs; ` +
          `master µs off ${median(results.off.map((r) => r.masterUs)).toFixed(1)}, on ${median(results.on.map((r) => r.masterUs)).toFixed(1)})`,
      );
    }
  } finally {
    await Promise.all([off.stop(), on.stop()]);
  }
}

void main();
