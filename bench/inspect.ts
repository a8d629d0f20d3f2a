/**
 * Edge inspection, two measurements:
 *
 * 1. The rule check alone (ns/op), with the example rules: the method
 *    set, two host patterns, an allow and a deny regex, a URL limit. Target:
 *    under 2 µs per request.
 * 2. The hand-off with inspection on vs off: dist/master.js with 2 workers and
 *    the demo app, every request on a fresh connection (`Connection: close`),
 *    so each one is peeked, inspected and handed off. wrk when installed,
 *    otherwise a bounded Node client. Runs off/on in alternating order and prints
 *    every run, the medians and the master's CPU time per connection (the
 *    machine may be shared: look at the spread).
 *
 *   npm run build && node dist/bench/inspect.js [iterations] [rounds] [seconds]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { compileInspector, type InspectConfig } from '../src/shared/inspect/rules.js';
import { median, startMaster } from './lib/master.js';

const ITERATIONS = Number(process.argv[2] ?? 1_000_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const SECONDS = Number(process.argv[4] ?? 5);

const RULES: InspectConfig = {
  methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
  hosts: ['example.com', '*.example.com'],
  paths: { allow: ['^/api(/|$)'], deny: ['\\.php$'] },
  maxUrlBytes: 2048,
};

function measure(name: string, op: () => unknown): number {
  // Warm up so that the optimising compiler has run, then time one bounded loop.
  for (let i = 0; i < 50_000; i++) op();
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) sink += op() === null ? 1 : 0;
  const ns = Number(process.hrtime.bigint() - start) / ITERATIONS;
  console.log(`${name.padEnd(48)} ${ns.toFixed(1).padStart(8)} ns/op  (${ITERATIONS} iterations, ${sink} allowed)`);
  return ns;
}

function ruleBench(): void {
  const inspect = compileInspector(RULES);
  console.log(`rule check; node ${process.version}`);
  const results = [
    measure('allowed: GET /api/... with a query string', () => inspect('GET', '/api/v1/users/42?fields=name,email&t=OqX3kZ1', 'app.example.com')),
    measure('refused: ZmEu probe (path-deny)', () => inspect('GET', '/phpMyAdmin-2.10.0.0/scripts/setup.php', 'example.com')),
    measure('refused: not under /api (path-allow)', () => inspect('GET', '/w00tw00t.at.blackhats.romanian.anti-sec:)', 'example.com')),
    measure('allowed, normalised: /api//v1/./users/%34%32', () => inspect('GET', '/api//v1/./users/%34%32', 'example.com')),
    measure('refused: 3000-byte URL (url-length)', () => inspect('GET', LONG_URL, 'example.com')),
    measure('refused: PROPFIND (method)', () => inspect('PROPFIND', '/api', 'example.com')),
  ];
  console.log(`worst case ${Math.max(...results).toFixed(1)} ns/op: ${Math.max(...results) < 2000 ? 'under' : 'OVER'} the 2 µs budget\n`);
}
const LONG_URL = `/api/${'a'.repeat(2995)}`;

/**
 * CPU seconds (user + system) a process has used, from /proc/<pid>/stat: the
 * master's cost per connection is less at the mercy of a shared machine than
 * throughput is.
 */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // utime and stime are fields 14 and 15 of stat(5); here indexed from field 3.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Requests per second over `SECONDS`, every request on a fresh connection, and how many. */
function load(port: number): { rps: number; requests: number } {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status === 0) {
    const out = execFileSync('wrk', ['-t1', '-c32', `-d${SECONDS}s`, '-H', 'Host: example.com', '-H', 'Connection: close', `http://127.0.0.1:${port}/api/x`], { encoding: 'utf8' });
    if (/Non-2xx|Socket errors: connect [1-9]/.test(out)) console.log(out);
    return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0) };
  }
  throw new Error('wrk is not installed (apt-get install -y wrk)');
}

async function handoffBench(): Promise<void> {
  console.log(`hand-off, new connection per request, wrk -t1 -c32 -d${SECONDS}s, ${ROUNDS} rounds each, alternating`);
  const off: number[] = [];
  const on: number[] = [];
  const cpuOff: number[] = [];
  const cpuOn: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Which goes first alternates too, so that neither side always follows the other.
    for (const inspect of round % 2 === 0 ? [null, RULES] : [RULES, null]) {
      const master = await startMaster(inspect ? { inspect } : {});
      try {
        load(master.port); // warm-up run, not counted
        const cpuBefore = cpuSeconds(master.proc.pid as number);
        const { rps, requests } = load(master.port);
        const cpuPerRequestUs = ((cpuSeconds(master.proc.pid as number) - cpuBefore) / requests) * 1e6;
        (inspect ? on : off).push(rps);
        (inspect ? cpuOn : cpuOff).push(cpuPerRequestUs);
        console.log(`round ${round + 1} inspect ${inspect ? 'on ' : 'off'}: ${rps.toFixed(0)} req/s, master CPU ${cpuPerRequestUs.toFixed(1)} µs/connection`);
      } finally {
        await master.stop();
      }
    }
  }
  const offMedian = median(off);
  const onMedian = median(on);
  console.log(`median off ${offMedian.toFixed(0)} req/s, on ${onMedian.toFixed(0)} req/s: ${(((onMedian - offMedian) / offMedian) * 100).toFixed(1)}%`);
  console.log(`median master CPU off ${median(cpuOff).toFixed(1)} µs/connection, on ${median(cpuOn).toFixed(1)} µs/connection`);
}

ruleBench();
void handoffBench();
