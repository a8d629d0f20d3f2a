/**
 * The side-by-side: ours against Node's own cluster round-robin,
 * sticky-session, @socket.io/sticky, HAProxy and nginx (when installed) and one
 * process without hand-off. Same app (bench/apps/app.ts), 2 workers, loopback,
 * wrk with X-Forwarded-For addresses from a pool of 1000 (bench/apps/xff.lua).
 *
 * Three measurements per contender and round (see {@link Mode}): new
 * connections per second (each request on its own connection), keep-alive
 * requests per second with a random client on every request (a balancer's
 * pooled connection), and keep-alive with one client per connection. Rounds are
 * interleaved (the contender order rotates every round) so that a noisy
 * neighbour hits everyone alike; the table shows medians and the median of the
 * per-round ratios to cluster-rr. Then, per contender, stickiness (20 keys × N
 * requests on new connections: does every key stay on one worker?) and spread
 * (1000 keys, one request each: the busiest worker's share). For ours the
 * spread under load is also read from the admin metrics (hand-offs by worker).
 *
 *   npm run build && npm run bench                       # full: 5 rounds × 10 s
 *   node dist/bench/compare.js --quick                   # smoke: 1 round × 2 s
 *   node dist/bench/compare.js --rounds 7 --duration 8 --connections 50 --wait-quiet 1200
 *
 * Prints a markdown table and writes bench/results/compare-<time>.json.
 * Every load loop is bounded: wrk runs for --duration and is killed past it,
 * probes send a fixed number of requests, each with a timeout.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { CONTENDERS, REPO, get, has, type Running } from './apps/contenders.js';
import { getText } from './lib/master.js';

const LUA = join(REPO, 'bench', 'apps', 'xff.lua');

/**
 * close: `Connection: close` on every request (one request per connection).
 * keepalive: keep-alive with a random address on every request, as an HTTP
 * balancer's pooled connection carries many clients. client: keep-alive with
 * one fixed address per connection (--clients wrk threads, each with one
 * address on all its connections), as a browser or a TCP-mode balancer
 * presents clients.
 */
type Mode = 'close' | 'keepalive' | 'client';
const MODES: readonly Mode[] = ['close', 'keepalive', 'client'];

interface Options {
  readonly quick: boolean;
  readonly rounds: number;
  readonly durationS: number;
  readonly connections: number;
  readonly threads: number;
  /** Clients in the one-client-per-connection mode: wrk threads, each with one address and connections / clients connections. */
  readonly clients: number;
  readonly stickyRequests: number;
  readonly waitQuietS: number;
  readonly only: readonly string[] | null;
  readonly modes: readonly Mode[];
}

function parseOptions(argv: readonly string[]): Options {
  const quick = argv.includes('--quick');
  const value = (name: string, fallback: number): number => {
    const index = argv.indexOf(name);
    if (index === -1) return fallback;
    const parsed = Number(argv[index + 1]);
    if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`${name}: expected a number, got ${argv[index + 1]}`);
    return parsed;
  };
  const onlyIndex = argv.indexOf('--only');
  return {
    quick,
    rounds: value('--rounds', quick ? 1 : 5),
    durationS: value('--duration', quick ? 2 : 10),
    connections: value('--connections', 50),
    threads: value('--threads', 1),
    clients: value('--clients', 10),
    stickyRequests: value('--sticky-requests', quick ? 3 : 20),
    waitQuietS: value('--wait-quiet', 0),
    only: onlyIndex === -1 ? null : (argv[onlyIndex + 1] ?? '').split(','),
    modes: modesOf(argv),
  };
}

function modesOf(argv: readonly string[]): readonly Mode[] {
  const index = argv.indexOf('--modes');
  if (index === -1) return MODES;
  const modes = (argv[index + 1] ?? '').split(',');
  for (const mode of modes) if (!(MODES as readonly string[]).includes(mode)) throw new Error(`--modes: expected some of ${MODES.join(',')}, got ${mode}`);
  return modes as Mode[];
}

// ---------------------------------------------------------------- clients

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The pool of client addresses, the same as bench/apps/xff.lua's. */
function poolAddress(i: number): string {
  return `198.18.${Math.floor(i / 256)}.${i % 256}`;
}

interface Stickiness {
  readonly keys: number;
  readonly stickyKeys: number;
  readonly requestsPerKey: number;
  readonly failed: number;
}

/** 20 keys × `perKey` requests, each on a new connection, interleaved: does each key stay on one process? */
async function measureStickiness(port: number, perKey: number): Promise<Stickiness> {
  const keys = 20;
  const seen: Array<Set<number>> = Array.from({ length: keys }, () => new Set());
  let failed = 0;
  const order = Array.from({ length: keys }, (_, k) => k);
  let seed = 0x9e3779b9;
  for (let round = 0; round < perKey; round++) {
    // A new order every round (a fixed-seed shuffle): with a fixed order, 20
    // keys on 2 round-robin workers would each land on the same parity and
    // look sticky.
    for (let i = keys - 1; i > 0; i--) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    for (const k of order) {
      try {
        const { pid } = await get(port, poolAddress(k * 37 + 11));
        if (pid === null) failed++;
        else seen[k]?.add(pid);
      } catch {
        failed++;
      }
    }
  }
  return { keys, stickyKeys: seen.filter((pids) => pids.size === 1).length, requestsPerKey: perKey, failed };
}

interface Spread {
  readonly requests: number;
  readonly byProcess: Record<string, number>;
  readonly busiestShare: number;
}

/** 1000 keys, one request each on a new connection, 8 at a time: the busiest process's share. */
async function measureSpread(port: number): Promise<Spread> {
  const counts = new Map<number, number>();
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < 1000) {
      const i = next++;
      try {
        const { pid } = await get(port, poolAddress(i));
        if (pid !== null) {
          counts.set(pid, (counts.get(pid) ?? 0) + 1);
          done++;
        }
      } catch {
        // Counted as missing from `requests`.
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  const values = [...counts.values()];
  return { requests: done, byProcess: Object.fromEntries([...counts].map(([pid, n]) => [String(pid), n])), busiestShare: done === 0 ? 1 : Math.max(...values) / done };
}

/** Hand-offs by worker slot from our admin metrics (sticky_handoffs_total), and by key source. */
async function handoffCounts(adminPort: number): Promise<{ byWorker: Map<string, number>; bySource: Map<string, number> }> {
  const text = await getText(adminPort, '/metrics');
  const byWorker = new Map<string, number>();
  const bySource = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^sticky_handoffs_total\{(.*)\} (\d+)$/.exec(line);
    if (!match) continue;
    const labels = match[1] ?? '';
    const value = Number(match[2]);
    const worker = /worker="([^"]*)"/.exec(labels)?.[1] ?? '?';
    const source = /key_source="([^"]*)"/.exec(labels)?.[1] ?? '?';
    byWorker.set(worker, (byWorker.get(worker) ?? 0) + value);
    bySource.set(source, (bySource.get(source) ?? 0) + value);
  }
  return { byWorker, bySource };
}

interface WrkResult {
  readonly requests: number;
  readonly durationUs: number;
  readonly connectErrors: number;
  readonly readErrors: number;
  readonly writeErrors: number;
  readonly statusErrors: number;
  readonly timeouts: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly rps: number;
}

/** One wrk run, killed if it overruns its duration by 15 s. */
function wrk(port: number, mode: Mode, durationS: number, options: Options): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const threads = mode === 'client' ? options.clients : options.threads;
    const args = ['-t', String(threads), '-c', String(options.connections), '-d', `${durationS}s`, '--timeout', '5s', '-s', LUA, `http://127.0.0.1:${port}/`];
    if (mode !== 'keepalive') args.push('--', mode);
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), (durationS + 15) * 1000);
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (!line) {
        reject(new Error(`wrk gave no result: ${out}\n${err}`));
        return;
      }
      const parsed = JSON.parse(line.slice('BENCH_JSON '.length)) as Omit<WrkResult, 'rps'>;
      resolve({ ...parsed, rps: parsed.requests / (parsed.durationUs / 1e6) });
    });
  });
}

// ---------------------------------------------------------------- statistics

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** Waits (bounded) until the 1-minute load average is below 0.8; returns whether it got there. */
async function waitQuiet(maxS: number): Promise<boolean> {
  const deadline = Date.now() + maxS * 1000;
  for (;;) {
    const load = loadAverage();
    if (load < 0.8) return true;
    if (Date.now() >= deadline) return false;
    console.error(`load average ${load.toFixed(2)} ≥ 0.8; waiting (up to ${Math.round((deadline - Date.now()) / 1000)} s more)`);
    await sleep(Math.min(30_000, Math.max(1000, deadline - Date.now())));
  }
}

// ---------------------------------------------------------------- main

interface RoundEntry {
  readonly round: number;
  readonly position: number;
  readonly contender: string;
  readonly mode: Mode;
  readonly loadBefore: number;
  readonly wrk: WrkResult;
  /** Ours, close mode: hand-offs by worker during the run (admin metrics). */
  readonly handoffsByWorker?: Record<string, number>;
  readonly handoffsBySource?: Record<string, number>;
}

function fmt(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!has('wrk')) throw new Error('wrk is not installed (apt-get install wrk)');
  let quietReached: boolean | null = null;
  if (options.waitQuietS > 0) quietReached = await waitQuiet(options.waitQuietS);
  const startedAt = new Date();
  const workdir = mkdtempSync(join(os.tmpdir(), 'sticky-bench-'));
  const selected = CONTENDERS.filter((c) => options.only === null || options.only.includes(c.name));
  const running = new Map<string, Running>();
  const skipped: Record<string, string> = {};
  const stopAll = async (): Promise<void> => {
    await Promise.all([...running.values()].map((r) => r.stop()));
    running.clear();
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  const entries: RoundEntry[] = [];
  const sticky: Record<string, Stickiness> = {};
  const spread: Record<string, Spread> = {};
  const loadStart = loadAverage();
  try {
    for (const contender of selected) {
      if (contender.unavailable) {
        skipped[contender.name] = contender.unavailable;
        continue;
      }
      console.error(`starting ${contender.name}`);
      running.set(contender.name, await contender.start(workdir));
    }
    const names = [...running.keys()];
    // Warm-up: JIT, connection pools, the proxies' backend connections.
    for (const name of names) {
      const port = (running.get(name) as Running).port;
      for (const mode of options.modes) {
        await wrk(port, mode, Math.min(2, options.durationS), options).catch((error: Error) => {
          throw new Error(`${name} (${mode}, warm-up): ${error.message}`);
        });
      }
    }
    for (let round = 0; round < options.rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length] as string);
      for (const [position, name] of order.entries()) {
        const target = running.get(name) as Running;
        // Rotate which mode goes first as well.
        const modes = options.modes.map((_, i) => options.modes[(i + round) % options.modes.length] as Mode);
        for (const mode of modes) {
          const loadBefore = loadAverage();
          const before = mode === 'close' && target.adminPort !== null ? await handoffCounts(target.adminPort) : null;
          const result = await wrk(target.port, mode, options.durationS, options).catch((error: Error) => {
            throw new Error(`${name} (${mode}, round ${round + 1}): ${error.message}`);
          });
          let extra: Pick<RoundEntry, 'handoffsByWorker' | 'handoffsBySource'> = {};
          if (before !== null && target.adminPort !== null) {
            const after = await handoffCounts(target.adminPort);
            const diff = (a: Map<string, number>, b: Map<string, number>): Record<string, number> =>
              Object.fromEntries([...a].map(([k, v]) => [k, v - (b.get(k) ?? 0)]));
            extra = { handoffsByWorker: diff(after.byWorker, before.byWorker), handoffsBySource: diff(after.bySource, before.bySource) };
          }
          entries.push({ round, position, contender: name, mode, loadBefore, wrk: result, ...extra });
          console.error(
            `round ${round + 1}/${options.rounds} ${name.padEnd(16)} ${mode.padEnd(9)} ${fmt(result.rps, 0).padStart(8)} req/s` +
              `  errors c/r/w/s/t ${result.connectErrors}/${result.readErrors}/${result.writeErrors}/${result.statusErrors}/${result.timeouts}  load ${fmt(loadBefore)}`,
          );
        }
      }
    }
    for (const name of names) {
      const port = (running.get(name) as Running).port;
      sticky[name] = await measureStickiness(port, options.stickyRequests);
      spread[name] = await measureSpread(port);
    }
  } finally {
    await stopAll();
    rmSync(workdir, { recursive: true, force: true });
  }

  // Per-round ratios to cluster-rr in the same round.
  const rps = (name: string, mode: Mode, round: number): number | undefined =>
    entries.find((e) => e.contender === name && e.mode === mode && e.round === round)?.wrk.rps;
  /** Per round, `name`'s rate over `base`'s in the same round (the rounds where both have one). */
  const ratiosTo = (name: string, base: string, mode: Mode): number[] => {
    const ratios: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const mine = rps(name, mode, round);
      const theirs = rps(base, mode, round);
      if (mine !== undefined && theirs !== undefined && theirs > 0) ratios.push(mine / theirs);
    }
    return ratios;
  };
  const span = (ratios: readonly number[]) => ({ ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios) });
  const names = [...new Set(entries.map((e) => e.contender))];
  const rows = names.map((name) => {
    const summary = (mode: Mode) => {
      const values = entries.filter((e) => e.contender === name && e.mode === mode).map((e) => e.wrk.rps);
      const ratios = ratiosTo(name, 'cluster-rr', mode);
      return { median: median(values), ...span(ratios), values, ratios };
    };
    const errors = entries.filter((e) => e.contender === name).reduce((n, e) => n + e.wrk.connectErrors + e.wrk.readErrors + e.wrk.writeErrors + e.wrk.statusErrors + e.wrk.timeouts, 0);
    const underLoad = entries.filter((e) => e.contender === name && e.handoffsByWorker !== undefined);
    let loadShare: number | null = null;
    if (underLoad.length > 0) {
      const shares = underLoad.map((e) => {
        const counts = Object.values(e.handoffsByWorker ?? {});
        const total = counts.reduce((a, b) => a + b, 0);
        return total === 0 ? 1 : Math.max(...counts) / total;
      });
      loadShare = median(shares);
    }
    return { name, close: summary('close'), keepalive: summary('keepalive'), client: summary('client'), errors, sticky: sticky[name], spread: spread[name], loadShare };
  });

  const range = (s: { ratio: number; ratioMin: number; ratioMax: number }): string =>
    Number.isFinite(s.ratio) ? `**${fmt(s.ratio)}** (${fmt(s.ratioMin)}–${fmt(s.ratioMax)})` : 'n/a';
  const lines = [
    '| contender | new conn/s | × cluster-rr (min–max) | keep-alive, one client per connection | × cluster-rr (min–max) | keep-alive, random client per request | × cluster-rr (min–max) | sticky keys | busiest worker | wrk errors |',
    '|---|---:|---|---:|---|---:|---|---|---|---:|',
    ...rows.map((row) => {
      const stick = row.sticky ? `${row.sticky.stickyKeys}/${row.sticky.keys}${row.sticky.failed > 0 ? ` (${row.sticky.failed} failed)` : ''}` : 'n/a';
      const share = row.spread ? `${fmt(row.spread.busiestShare * 100, 1)}%` : 'n/a';
      const load = row.loadShare === null ? '' : ` (${fmt(row.loadShare * 100, 1)}% of hand-offs under load)`;
      return `| ${row.name} | ${fmt(row.close.median, 0)} | ${range(row.close)} | ${fmt(row.client.median, 0)} | ${range(row.client)} | ${fmt(row.keepalive.median, 0)} | ${range(row.keepalive)} | ${stick} | ${share}${load} | ${row.errors} |`;
    }),
  ];
  // Ours against the proxies in the data path: the median of the per-round ratios, per mode.
  const proxies = ['haproxy', 'nginx'].filter((p) => names.includes(p));
  const ours = names.filter((n) => n.startsWith('ours'));
  if (proxies.length > 0 && ours.length > 0) {
    const against = (name: string, mode: Mode, proxy: string): string => range(span(ratiosTo(name, proxy, mode)));
    // In the main table's order.
    const shown = (['close', 'client', 'keepalive'] as const).filter((mode) => options.modes.includes(mode));
    const columns = shown.flatMap((mode) => proxies.map((proxy) => ({ mode, proxy })));
    const label: Record<Mode, string> = { close: 'new conn', client: 'keep-alive, one client per connection', keepalive: 'keep-alive, random client per request' };
    lines.push(
      '',
      `| against the proxies (per-round ratios) | ${columns.map((c) => `${label[c.mode]}: × ${c.proxy}`).join(' | ')} |`,
      `|---|${columns.map(() => '---').join('|')}|`,
      ...ours.map((name) => `| ${name} | ${columns.map((c) => against(name, c.mode, c.proxy)).join(' | ')} |`),
    );
  }
  const table = lines.join('\n');
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  const header =
    `${startedAt.toISOString()} · node ${process.version} · ${os.cpus().length} × ${cpu} · ` +
    `${options.rounds} rounds × ${options.durationS} s per measurement · wrk -t${options.threads} -c${options.connections} (one client per thread: -t${options.clients}) · ` +
    `load average ${fmt(loadStart)} at start, ${fmt(loadAverage())} at end` +
    (quietReached === false ? ' (never got below 0.8 within --wait-quiet)' : '');
  console.log(`\n${header}\n\n${table}\n`);
  for (const [name, reason] of Object.entries(skipped)) console.log(`skipped ${name}: ${reason}`);
  for (const row of rows) {
    const c = CONTENDERS.find((x) => x.name === row.name);
    if (c) console.log(`- ${row.name}: ${c.setup}`);
  }

  const resultsDir = join(REPO, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `compare-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        node: process.version,
        cpus: os.cpus().length,
        cpu,
        options,
        quietReached,
        loadStart,
        loadEnd: loadAverage(),
        skipped,
        setups: Object.fromEntries(CONTENDERS.map((c) => [c.name, c.setup])),
        rows,
        entries,
        table,
      },
      null,
      2,
    ),
  );
  console.log(`\nwritten ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
