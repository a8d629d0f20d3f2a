import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The repository root, from dist/bench/lib. */
export const ROOT = resolve(__dirname, '..', '..', '..');

/** A dist/master.js started for a benchmark. */
export interface BenchMaster {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  stop(): Promise<void>;
}

/** Starts dist/master.js with `overrides` (ports 0, warn-level logs) and waits for its 'listening' line. */
export async function startMaster(overrides: Record<string, unknown> = {}): Promise<BenchMaster> {
  const dir = mkdtempSync(join(tmpdir(), 'sticky-bench-'));
  const configPath = join(dir, 'config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      workers: { count: 2, app: join(ROOT, 'dist', 'workers', 'demo-app.js') },
      admin: { host: '127.0.0.1', port: 0 },
      log: { level: 'info' },
      ...overrides,
    }),
  );
  const proc = spawn(process.execPath, [join(ROOT, 'dist', 'master.js'), '--config', configPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  let port = 0;
  let adminPort = 0;
  await new Promise<void>((done, fail) => {
    proc.once('exit', (code) => fail(new Error(`master exited with ${code}`)));
    createInterface({ input: proc.stdout! }).on('line', (text) => {
      try {
        const line = JSON.parse(text) as { msg?: string; port?: number };
        if (line.msg === 'listening') port = line.port ?? 0;
        if (line.msg === 'admin listening') adminPort = line.port ?? 0;
        if (port && adminPort) done();
      } catch {
        // not a log line
      }
    });
  });
  const exited = new Promise<void>((done) => proc.once('exit', () => done()));
  return {
    proc,
    port,
    adminPort,
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** Open descriptors and resident memory of a process (Linux /proc). */
export function processStats(pid: number): { fds: number; rssMB: number } {
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { fds, rssMB: Math.round((rssKb / 1024) * 10) / 10 };
}

/** One GET on a fresh connection; resolves with the latency in ms (rejects on any failure). */
export function timedGet(port: number, headers: Record<string, string> = {}): Promise<number> {
  const start = process.hrtime.bigint();
  return new Promise((done, fail) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? done(Number(process.hrtime.bigint() - start) / 1e6) : fail(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', fail);
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
  });
}

/** Sends bytes on a fresh connection and resolves when the server closes it (or after `maxMs`). */
export function sendAndWaitClose(port: number, bytes: Buffer | string, maxMs: number): Promise<void> {
  return new Promise((done) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => socket.write(bytes));
    const timer = setTimeout(() => socket.destroy(), maxMs);
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      done();
    });
  });
}

/** The median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** GET a path on the admin API (or any loopback server) and resolve with the body text. */
export function getText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('admin timeout')));
    req.on('error', reject);
  });
}
