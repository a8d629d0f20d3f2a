/**
 * The chaos soak: every fault the pool handles, at random, at once, while
 * clients check every byte. Faults: kill -9 of a worker, SIGSTOP/SIGCONT of
 * one (1-3 s), SIGHUP rolling restarts, scaling 2 ↔ 4. Clients: 1 MiB
 * uploads checked by SHA-256, WebSocket echo streams, socket.io polling
 * sessions, a slowloris trickle. Every failure must be explained by a fault
 * that touched the worker holding it; the master's RSS and descriptors are
 * compared with their baseline after each phase. Prints a summary table.
 *
 *   npm run build && node dist/bench/chaos.js [seconds=600] [phase seconds=15] [--json]
 *
 * With --json the last line is the summary as JSON (test/integration/chaos.test.ts runs 60 s).
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { io, type Socket as IoSocket } from 'socket.io-client';
import WebSocket from 'ws';
import { hashKey } from '../src/shared/ring/farmhash.js';
import { rankSlots } from '../src/shared/ring/rendezvous.js';
import { ROOT, getText, processStats, startMaster, type BenchMaster } from './lib/master.js';
import { clientAddress } from './lib/websockets.js';

export type FaultKind = 'kill -9' | 'SIGSTOP/SIGCONT' | 'SIGHUP restart' | 'scale 2 <-> 4';

export interface ChaosSummary {
  readonly faults: Record<FaultKind, number>;
  readonly checked: { uploads: number; uploadBytes: number; wsMessages: number; wsBytes: number; ioAcks: number; slowlorisClosed: number };
  /** Failures explained by a fault, by cause. */
  readonly explained: Record<string, number>;
  /** Failures no fault explains (must be none). */
  readonly unexplained: string[];
  /** Bytes that came back different from what was sent (must be 0). */
  readonly corrupted: number;
  readonly baseline: { readonly fds: number; readonly rssMB: number };
  readonly phases: Array<{ readonly fds: number; readonly rssMB: number }>;
  /** Bounds a phase's end must be within: descriptors over the baseline, RSS as a multiple of it. */
  readonly bounds: { readonly fds: number; readonly rss: number };
}

interface WorkerEntry {
  slot: number;
  pid: number | null;
  state: string;
}

/** What happened to worker processes, for explaining failures. */
class FaultLog {
  readonly killed = new Map<number, number>();
  /** Each kill's slot and the slot count then: that slot's keys go to their next choice and come back when it respawns. */
  readonly kills: Array<{ readonly at: number; readonly slot: number; readonly slots: number }> = [];
  readonly stopped: Array<{ readonly pid: number; readonly from: number; readonly to: number; readonly slot: number; readonly slots: number }> = [];
  /** A pid that left the pool without being killed (drained: a restart or a scale-down), and when it was last seen. */
  readonly drained = new Map<number, number>();
  readonly scaleUps: number[] = [];
  /** The ready slots as GET /workers showed them, each time they changed. */
  readonly masks: Array<{ readonly at: number; readonly ready: readonly boolean[] }> = [];
  /** Every fault with its time, for the report of an unexplained failure. */
  readonly events: Array<{ readonly at: number; readonly text: string }> = [];
  readonly counts: Record<FaultKind, number> = { 'kill -9': 0, 'SIGSTOP/SIGCONT': 0, 'SIGHUP restart': 0, 'scale 2 <-> 4': 0 };

  /** The slots that owned `key` (its first ready slot in rendezvous order) at some time in [from, to], as observed. */
  ownersDuring(key: string, from: number, to: number): Set<number> {
    const owners = new Set<number>();
    const hash = hashKey(key);
    this.masks.forEach((mask, index) => {
      const next = this.masks[index + 1];
      if (mask.at > to || (next !== undefined && next.at < from)) return;
      const owner = rankSlots(hash, mask.ready.length).find((slot) => mask.ready[slot] === true);
      if (owner !== undefined) owners.add(owner);
    });
    return owners;
  }

  /** Why an operation on `pid` (null: unknown) between `start` and `end` may have failed, or null. */
  explain(pid: number | null, start: number, end: number, kind: 'upload' | 'stream' | 'session', key: string): string | null {
    const killedAt = pid === null ? undefined : this.killed.get(pid);
    if (killedAt !== undefined && killedAt >= start - 50) return 'kill -9 of its worker';
    if (pid === null) for (const at of this.killed.values()) if (at >= start - 50 && at <= end + 50) return 'kill -9 before its first byte';
    if (kind === 'upload') return null;
    if (pid !== null && this.drained.has(pid)) return 'its worker drained (restart or scale-down)';
    if (kind === 'stream') return null;
    // A session is one key's requests: they leave its worker when it is unresponsive, drained or when a new slot takes the key.
    // Its own worker, or its key's first worker (the key goes to its next slot and back).
    const touched = (stop: { pid: number; slot: number; slots: number }): boolean => stop.pid === pid || rankSlots(hashKey(key), stop.slots)[0] === stop.slot;
    if (this.stopped.some((stop) => stop.from <= end && stop.to + 2000 >= start && touched(stop))) return 'its worker, or its key’s first, was unresponsive (SIGSTOP)';
    if (pid === null && [...this.drained.values()].some((at) => at >= start - 1000 && at <= end + 1000)) return 'a worker drained during it';
    if (this.kills.some((kill) => kill.at >= start - 5000 && kill.at <= end && rankSlots(hashKey(key), kill.slots)[0] === kill.slot)) return "kill -9 of its key's first worker (away, then back when it respawned)";
    const movedByScaleUp = rankSlots(hashKey(key), 4)[0] !== rankSlots(hashKey(key), 2)[0];
    if (movedByScaleUp && this.scaleUps.some((at) => at >= start - 5000 && at <= end + 1000)) return 'scale-up 2 -> 4 moved its key';
    if (this.ownersDuring(key, start - 200, end + 200).size > 1) return 'its key changed workers during it (the pool changed)';
    return null;
  }
}

function randomInt(below: number): number {
  return Math.floor(Math.random() * below);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function runChaos(options: { durationMs: number; phaseMs: number; log?: (line: string) => void }): Promise<ChaosSummary> {
  const log = options.log ?? (() => {});
  const master: BenchMaster = await startMaster({
    // Stops of 1-3 s; a loaded machine (the suite runs two files at once) must not look like one.
    workers: { count: 2, app: join(ROOT, 'dist', 'bench', 'apps', 'chaos-app.js'), drainTimeoutMs: 3000, heartbeatMs: 200, unresponsiveMs: 2000, ackTimeoutMs: 1500, killUnresponsiveMs: 0 },
    limits: { peekTimeoutMs: 2000 },
  });
  const faults = new FaultLog();
  const checked = { uploads: 0, uploadBytes: 0, wsMessages: 0, wsBytes: 0, ioAcks: 0, slowlorisClosed: 0 };
  const explained: Record<string, number> = {};
  const unexplained: string[] = [];
  let corrupted = 0;
  // Explained at the end of the phase, once the fault log and the pool's history are complete.
  const failures: Array<{ what: string; pid: number | null; start: number; end: number; kind: 'upload' | 'stream' | 'session'; key: string }> = [];
  const fail = (what: string, pid: number | null, start: number, kind: 'upload' | 'stream' | 'session', key: string): void => {
    failures.push({ what, pid, start, end: Date.now(), kind, key });
  };
  const explainFailures = (): void => {
    for (const failure of failures.splice(0)) {
      const cause = faults.explain(failure.pid, failure.start, failure.end, failure.kind, failure.key);
      const near = faults.events.filter((event) => event.at >= failure.start - 3000 && event.at <= failure.end + 1000).map((event) => `${event.text} at ${event.at - failure.start} ms`);
      if (cause === null) unexplained.push(`${failure.what} (pid ${failure.pid ?? 'unknown'}, after ${failure.end - failure.start} ms; faults near it: ${near.join(', ') || 'none'})`);
      else explained[cause] = (explained[cause] ?? 0) + 1;
    }
  };

  // The pool as the admin API shows it, every 100 ms: which pids left without a kill.
  let workers: WorkerEntry[] = [];
  const lastSeen = new Map<number, number>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      try {
        workers = JSON.parse(await getText(master.adminPort, '/workers')) as WorkerEntry[];
        const now = Date.now();
        const ready = workers.map((worker) => worker.state === 'ready');
        if (faults.masks.at(-1)?.ready.join() !== ready.join()) faults.masks.push({ at: now, ready });
        const present = new Set(workers.map((worker) => worker.pid));
        for (const [pid, at] of lastSeen) if (!present.has(pid) && !faults.killed.has(pid)) faults.drained.set(pid, at);
        for (const worker of workers) if (worker.pid !== null) lastSeen.set(worker.pid, now);
      } catch {
        // the admin API is checked again in 100 ms
      }
      await sleep(100);
    }
  })();

  let running = true;
  const uploadLane = async (lane: number): Promise<void> => {
    for (let n = 0; running; n++) {
      const key = clientAddress(100 + lane * 10_000 + (n % 50));
      const body = randomBytes(1 << 20);
      const expected = createHash('sha256').update(body).digest('hex');
      const start = Date.now();
      let pid: number | null = null;
      try {
        const answer = await new Promise<string>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: master.port, method: 'POST', path: '/upload', agent: false, headers: { 'x-forwarded-for': key, 'content-length': body.length }, timeout: 20_000 }, (res) => {
            pid = Number(res.headers['x-pid']) || null;
            let text = '';
            res.setEncoding('latin1');
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () => (res.complete ? resolve(text) : reject(new Error('response cut short'))));
            res.on('error', reject);
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', reject);
          // Split writes: the bytes cross the hand-off in many segments.
          for (let offset = 0; offset < body.length; offset += 16_384) req.write(body.subarray(offset, offset + 16_384));
          req.end();
        });
        if (answer === expected) {
          checked.uploads++;
          checked.uploadBytes += body.length;
        } else {
          corrupted += body.length;
          unexplained.push(`upload SHA-256 mismatch (pid ${pid})`);
        }
      } catch (error) {
        fail(`upload: ${(error as Error).message}`, pid, start, 'upload', key);
      }
    }
  };

  const wsLane = async (lane: number): Promise<void> => {
    for (let n = 0; running; n++) {
      const key = clientAddress(200_000 + lane * 100 + n);
      const start = Date.now();
      let pid: number | null = null;
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${master.port}/ws`, { headers: { 'x-forwarded-for': key }, handshakeTimeout: 20_000 });
        let outstanding: Buffer | null = null;
        let done = false;
        const finish = (failure: string | null): void => {
          if (done) return;
          done = true;
          clearInterval(stopper);
          if (failure !== null) fail(`WebSocket: ${failure}`, pid, start, 'stream', key);
          ws.terminate();
          resolve();
        };
        const sendNext = (): void => {
          outstanding = randomBytes(1 + randomInt(16_384));
          ws.send(outstanding);
        };
        ws.on('message', (data: Buffer, isBinary) => {
          if (pid === null && !isBinary) {
            pid = (JSON.parse(data.toString()) as { pid: number }).pid;
            sendNext();
            return;
          }
          if (outstanding === null || !data.equals(outstanding)) {
            corrupted += outstanding?.length ?? data.length;
            unexplained.push(`WebSocket echo differs (pid ${pid})`);
            finish(null);
            return;
          }
          checked.wsMessages++;
          checked.wsBytes += data.length;
          outstanding = null;
          if (running) setTimeout(sendNext, 10);
          else finish(null);
        });
        ws.on('error', (error) => finish(error.message));
        ws.on('close', () => finish(running ? 'closed' : null));
        // A stream whose worker is stopped waits for it; one that never answers again is a failure.
        const stopper = setInterval(() => {
          if (!running && outstanding === null) finish(null);
        }, 100);
      });
      if (running) await sleep(100);
    }
  };

  const sessionLane = async (lane: number): Promise<void> => {
    for (let n = 0; running; n++) {
      const key = clientAddress(300_000 + lane * 100 + n);
      const start = Date.now();
      let pid: number | null = null;
      const socket: IoSocket = io(`http://127.0.0.1:${master.port}`, { transports: ['polling'], reconnection: false, forceNew: true, timeout: 20_000, extraHeaders: { 'x-forwarded-for': key } });
      const failure = await new Promise<string | null>((resolve) => {
        socket.on('connect_error', (error) => resolve(`connect: ${error.message}`));
        socket.on('disconnect', (reason, details) => {
          const why = details instanceof Error ? details.message : details === undefined ? '' : ` ${(details as { description?: unknown }).description ?? ''} ${JSON.stringify((details as { context?: { status?: unknown; responseText?: unknown } }).context?.responseText ?? (details as { context?: { status?: unknown } }).context?.status ?? '')}`;
          resolve(running ? `disconnect: ${reason}${why}` : null);
        });
        socket.on('connect', async () => {
          for (let i = 0; running && socket.connected; i++) {
            const payload = randomBytes(64).toString('base64');
            try {
              const answer = (await socket.timeout(10_000).emitWithAck('message', payload)) as { payload: string; pid: number };
              if (answer.payload !== payload) {
                corrupted += payload.length;
                unexplained.push(`socket.io ack differs (pid ${answer.pid})`);
              } else checked.ioAcks++;
              if (pid === null) pid = answer.pid;
              else if (answer.pid !== pid) return resolve(`moved from pid ${pid} to ${answer.pid}`);
            } catch (error) {
              return resolve(`ack: ${(error as Error).message}`);
            }
            await sleep(50);
          }
          resolve(null);
        });
      });
      socket.close();
      if (failure !== null) fail(`socket.io session: ${failure}`, pid, start, 'session', key);
      if (running) await sleep(100);
    }
  };

  const slowlorisLane = async (): Promise<void> => {
    while (running) {
      const start = Date.now();
      const closed = await new Promise<boolean>((resolve) => {
        const socket = net.connect({ port: master.port, host: '127.0.0.1' }, () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n'));
        const drip = setInterval(() => socket.write('X'), 500);
        const limit = setTimeout(() => {
          socket.destroy();
          resolve(false);
        }, 6000);
        socket.on('data', () => {});
        socket.on('error', () => {});
        socket.on('close', () => {
          clearInterval(drip);
          clearTimeout(limit);
          resolve(true);
        });
      });
      if (closed) checked.slowlorisClosed++;
      else unexplained.push(`slowloris connection still open after ${Date.now() - start} ms (peekTimeoutMs is 2000)`);
    }
  };

  /** PUT /workers: resolves when the admin API answered (once the new workers are ready), or failed. */
  const scaleTo = (count: number): Promise<void> =>
    new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: master.adminPort, method: 'PUT', path: '/workers', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', () => resolve());
      req.end(JSON.stringify({ count }));
    });

  const injectFaults = async (until: number): Promise<void> => {
    let target = 2;
    while (Date.now() < until - 3000) {
      await sleep(1500 + randomInt(1500));
      const ready = workers.filter((worker) => worker.state === 'ready' && worker.pid !== null);
      const settled = ready.length === workers.length && workers.length === target;
      const kinds: FaultKind[] = settled ? ['kill -9', 'SIGSTOP/SIGCONT', 'SIGHUP restart', 'scale 2 <-> 4'] : ['kill -9', 'SIGSTOP/SIGCONT'];
      const kind = kinds[randomInt(kinds.length)] as FaultKind;
      const victimEntry = ready[randomInt(ready.length)];
      const victim = victimEntry?.pid ?? null;
      if ((kind === 'kill -9' || kind === 'SIGSTOP/SIGCONT') && victim === null) continue;
      faults.counts[kind]++;
      faults.events.push({ at: Date.now(), text: `${kind}${victim === null ? '' : ` (a ready worker: ${victim})`}` });
      log(`fault: ${kind}${victim === null || kind === 'SIGHUP restart' || kind === 'scale 2 <-> 4' ? '' : ` pid ${victim}`}`);
      if (kind === 'kill -9') {
        faults.killed.set(victim as number, Date.now());
        faults.kills.push({ at: Date.now(), slot: victimEntry?.slot ?? -1, slots: workers.length });
        process.kill(victim as number, 'SIGKILL');
      } else if (kind === 'SIGSTOP/SIGCONT') {
        const from = Date.now();
        process.kill(victim as number, 'SIGSTOP');
        const forMs = 1000 + randomInt(2000);
        faults.stopped.push({ pid: victim as number, from, to: from + forMs, slot: victimEntry?.slot ?? -1, slots: workers.length });
        await sleep(forMs);
        process.kill(victim as number, 'SIGCONT');
      } else if (kind === 'SIGHUP restart') {
        master.proc.kill('SIGHUP');
      } else {
        target = target === 2 ? 4 : 2;
        if (target === 4) faults.scaleUps.push(Date.now());
        await scaleTo(target);
      }
    }
    // Back to two workers for the phase's end (the phase waits for them).
    if (target !== 2) void scaleTo(2);
  };

  /** One phase: clients for `ms`, with faults unless `quiet`; then everything closes and the pool settles. */
  const phase = async (ms: number, quiet: boolean): Promise<{ fds: number; rssMB: number }> => {
    running = true;
    const lanes = [uploadLane(0), uploadLane(1), wsLane(0), wsLane(1), wsLane(2), sessionLane(0), sessionLane(1), sessionLane(2), slowlorisLane()];
    const until = Date.now() + ms;
    if (!quiet) await injectFaults(until);
    await sleep(Math.max(0, until - Date.now()));
    running = false;
    await Promise.all(lanes);
    // Settled: two ready workers, then the master as it is with no client left.
    for (let i = 0; i < 300 && !(workers.length === 2 && workers.every((worker) => worker.state === 'ready')); i++) await sleep(100);
    await sleep(1000);
    explainFailures();
    return processStats(master.proc.pid as number);
  };

  try {
    const baseline = await phase(Math.min(options.phaseMs, 10_000), true);
    log(`baseline (a phase without faults): ${baseline.fds} descriptors, ${baseline.rssMB} MiB`);
    const phases: Array<{ fds: number; rssMB: number }> = [];
    const end = Date.now() + options.durationMs;
    while (Date.now() < end - 5000) {
      const stats = await phase(Math.min(options.phaseMs, end - Date.now()), false);
      phases.push(stats);
      log(`phase ${phases.length}: ${stats.fds} descriptors, ${stats.rssMB} MiB; ${unexplained.length} unexplained failures so far`);
    }
    if (master.proc.exitCode !== null) unexplained.push(`the master exited (${master.proc.exitCode})`);
    return { faults: faults.counts, checked, explained, unexplained, corrupted, baseline, phases, bounds: { fds: 10, rss: 1.5 } };
  } finally {
    running = false;
    watching = false;
    await watcher;
    for (const stop of faults.stopped) {
      try {
        process.kill(stop.pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    await master.stop();
  }
}

/** The summary as a Markdown table (bench/README.md keeps the 10-minute run's). */
export function summaryTable(summary: ChaosSummary): string {
  const rows: string[] = ['| | count |', '|---|---:|'];
  for (const [kind, count] of Object.entries(summary.faults)) rows.push(`| fault: ${kind} | ${count} |`);
  const c = summary.checked;
  rows.push(`| 1 MiB uploads checked (SHA-256) | ${c.uploads} (${(c.uploadBytes / 2 ** 20).toFixed(0)} MiB) |`);
  rows.push(`| WebSocket echoes checked | ${c.wsMessages} (${(c.wsBytes / 2 ** 20).toFixed(1)} MiB) |`);
  rows.push(`| socket.io acks checked | ${c.ioAcks} |`);
  rows.push(`| slowloris connections closed by the master | ${c.slowlorisClosed} |`);
  for (const [cause, count] of Object.entries(summary.explained)) rows.push(`| failed, explained: ${cause} | ${count} |`);
  rows.push(`| failed, unexplained | ${summary.unexplained.length} |`);
  rows.push(`| corrupted bytes | ${summary.corrupted} |`);
  const worst = summary.phases.reduce((acc, p) => ({ fds: Math.max(acc.fds, p.fds), rssMB: Math.max(acc.rssMB, p.rssMB) }), { fds: 0, rssMB: 0 });
  rows.push(`| master after each of ${summary.phases.length} phases, worst (baseline) | ${worst.fds} descriptors (${summary.baseline.fds}), ${worst.rssMB} MiB (${summary.baseline.rssMB}) |`);
  return rows.join('\n');
}

if (require.main === module) {
  const [seconds = 600, phaseSeconds = 15] = process.argv.slice(2).filter((arg) => !arg.startsWith('--')).map(Number);
  void runChaos({ durationMs: seconds * 1000, phaseMs: phaseSeconds * 1000, log: (line) => console.log(line) }).then((summary) => {
    console.log(`\nchaos soak, ${seconds} s, node ${process.version}\n`);
    console.log(summaryTable(summary));
    for (const line of summary.unexplained) console.log(`unexplained: ${line}`);
    if (process.argv.includes('--json')) console.log(JSON.stringify(summary));
    process.exitCode = summary.unexplained.length === 0 && summary.corrupted === 0 ? 0 : 1;
  });
}
