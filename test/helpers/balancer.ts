import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The repository root (tests run from it). */
export const ROOT = resolve(__dirname, '..', '..');
/** The built command, as a user runs it. */
export const MASTER = join(ROOT, 'dist', 'master.js');
/**
 * What the harness starts: the command (dist/master.js), or with
 * STICKY_TEST_ENTRY=api the same job done through the programmatic API
 * (test/fixtures/api-master.js), so one integration test runs both ways.
 */
export const VIA_API = process.env.STICKY_TEST_ENTRY === 'api';
const ENTRY = VIA_API ? join(ROOT, 'test', 'fixtures', 'api-master.js') : MASTER;
/** The built demo app. */
export const DEMO_APP = join(ROOT, 'dist', 'workers', 'demo-app.js');

/** A running dist/master.js. */
export interface RunningBalancer {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly adminPort: number | null;
  /** Every pino line printed so far (master and workers). */
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line matching, polling the lines as they arrive. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

/** Writes a config file (ports 0 unless given) and returns its path. */
export function writeConfig(overrides: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'sticky-test-'));
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    workers: { count: 2, app: DEMO_APP },
    admin: { host: '127.0.0.1', port: 0 },
    log: { level: 'info' },
    ...overrides,
  };
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** Starts dist/master.js with a config and waits for its 'listening' line. */
export async function startBalancer(
  overrides: Record<string, unknown> = {},
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
  options: { readonly openFiles?: number } = {},
): Promise<RunningBalancer> {
  const configPath = writeConfig(overrides);
  const args = [ENTRY, '--config', configPath, ...extraArgs];
  // With openFiles, through the shell's ulimit (Node cannot set its own limits); the workers inherit it.
  const [command, argv] =
    options.openFiles === undefined ? [process.execPath, args] : ['bash', ['-c', `ulimit -n ${options.openFiles} && exec "$0" "$@"`, process.execPath, ...args]];
  const proc = spawn(command, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ predicate: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }> = [];
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    logs.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<number | null>((done) => proc.on('exit', (code) => done(code)));
  const waitForLog = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> => {
    const found = logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      waiters.push({
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolveLine(line);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`balancer exited (${code}) before the expected log line; stderr: ${stderr}`));
      });
    });
  };
  let listening: Record<string, unknown>;
  let admin: Record<string, unknown> | null;
  try {
    listening = await waitForLog((line) => line.msg === 'listening');
    admin = overrides.admin === false ? null : await waitForLog((line) => line.msg === 'admin listening');
  } catch (error) {
    // A master that never got ready must not outlive the test (no teardown was registered yet).
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    throw error;
  }
  return {
    proc,
    port: listening.port as number,
    adminPort: admin ? (admin.port as number) : null,
    logs,
    waitForLog,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** The demo app's JSON answer. */
export interface DemoAnswer {
  worker: number;
  pid: number;
  clientIp: string | null;
  clientPort: number | null;
  key: string | null;
  keySource: string | null;
  xff: string | null;
}

/** A response read off a fresh connection. */
export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on its own fresh TCP connection (no agent, no keep-alive reuse). */
export function request(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: Buffer | string; host?: string } = {},
): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const req = http.request(
      { host: options.host ?? '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** GET on a fresh connection, parsed as the demo app's JSON. */
export async function demoGet(port: number, headers: Record<string, string | string[]> = {}): Promise<DemoAnswer> {
  const answer = await request(port, { headers });
  if (answer.status !== 200) throw new Error(`status ${answer.status}: ${answer.body.toString()}`);
  return JSON.parse(answer.body.toString()) as DemoAnswer;
}

/** Opens a raw TCP connection. */
export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolveSocket, reject) => {
    const socket = net.connect({ port, host, noDelay: true }, () => resolveSocket(socket));
    socket.once('error', reject);
  });
}

/**
 * Writes `data` in pieces cut at `offsets`, each its own TCP segment: Nagle is
 * off and the next write waits until the previous one has left the socket and
 * the event loop has turned (pacing, not a timing assumption).
 */
export async function writeSplit(socket: net.Socket, data: Buffer, offsets: readonly number[]): Promise<void> {
  let start = 0;
  for (const offset of [...offsets, data.length]) {
    const piece = data.subarray(start, offset);
    start = offset;
    if (piece.length === 0) continue;
    await new Promise<void>((done, fail) => socket.write(piece, (error) => (error ? fail(error) : done())));
    await new Promise((done) => setTimeout(done, 2));
  }
}

/** Reads everything until the peer closes (or `untilBytes` arrive). */
export function readAll(socket: net.Socket, untilBytes = Infinity): Promise<Buffer> {
  return new Promise((resolveBytes) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (): void => resolveBytes(Buffer.concat(chunks));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= untilBytes) {
        socket.removeAllListeners('data');
        finish();
      }
    });
    socket.once('close', finish);
    socket.once('error', () => {});
  });
}

/** Polls `check` until it returns a value (not undefined) or the time is up. */
export async function pollUntil<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((done) => setTimeout(done, everyMs));
  }
}

/** A loopback port that was free a moment ago (shared with the benches' nginx launcher). */
export { freePort } from '../../bench/lib/nginx.js';

/** Opens a raw TCP connection from a chosen local address (127.0.0.0/8 has many). */
export function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolveSocket, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress, noDelay: true }, () => resolveSocket(socket));
    socket.once('error', reject);
  });
}

/** Sends raw bytes on a fresh connection and returns everything the server wrote before closing. */
export async function exchange(port: number, bytes: Buffer | string, localAddress?: string): Promise<Buffer> {
  const socket = localAddress ? await connectFrom(port, localAddress) : await connect(port);
  const response = readAll(socket);
  socket.write(bytes);
  return response;
}

/** The master's open descriptors and resident memory, from /proc (Linux). */
export function processStats(pid: number): { fds: number; rssBytes: number } {
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { fds, rssBytes: rssKb * 1024 };
}

/** GET on the admin API, parsed as JSON (or text for /metrics). */
export async function admin(adminPort: number, path: string, init: { method?: string; body?: string } = {}): Promise<Answer> {
  return request(adminPort, { method: init.method ?? 'GET', path, ...(init.body === undefined ? {} : { body: init.body, headers: { 'content-type': 'application/json' } }) });
}

/** Which program is installed (for interop tests that need a Debian peer). */
export function which(program: string): string | null {
  const result = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

/** A raw HTTP/1.1 response: status, lowercase field names, body (Content-Length framed or up to close). */
export interface RawResponse {
  status: number;
  fields: Map<string, string>;
  body: Buffer;
}

/** Parses the first response in `bytes`; null while the head or the Content-Length body is incomplete. */
export function parseResponse(bytes: Buffer): (RawResponse & { consumed: number }) | null {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const fields = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  const length = fields.get('content-length');
  const bodyEnd = length === undefined ? bytes.length : end + 4 + Number(length);
  if (bytes.length < bodyEnd) return null;
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), fields, body: bytes.subarray(end + 4, bodyEnd), consumed: bodyEnd };
}

/** Reads exactly one Content-Length framed response off a keep-alive connection (rejects if it closes first). */
export function readResponse(socket: net.Socket): Promise<RawResponse> {
  return new Promise((resolveResponse, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const response = parseResponse(buffered);
      if (response === null) return;
      cleanup();
      if (response.consumed < buffered.length) socket.unshift(buffered.subarray(response.consumed));
      resolveResponse(response);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`connection closed before a complete response (${buffered.length} bytes)`));
    };
    const cleanup = (): void => {
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** Whether a process is alive (signal 0 probes without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
