/**
 * The contenders of the side-by-side (bench/compare.ts, bench/handoff.ts):
 * how each is started on loopback with the bench app and 2 workers, and
 * stopped (each in its own process group, so its workers go with it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';

/** Where the compiled launchers live (this file is dist/bench/apps/contenders.js). */
const APPS = __dirname;
/** The repository root. */
export const REPO = join(__dirname, '..', '..', '..');


/** A contender, started once and measured in every round. */
export interface Running {
  readonly port: number;
  /** Ours only: the admin port (hand-offs by worker). */
  readonly adminPort: number | null;
  stop(): Promise<void>;
}

export interface Contender {
  readonly name: string;
  /** What the table says about how it was set up. */
  readonly setup: string;
  /** Why it cannot run here, or null. */
  readonly unavailable: string | null;
  start(workdir: string): Promise<Running>;
}

/**
 * Ports are picked below the kernel's ephemeral range (32768–60999 here):
 * wrk's hundreds of thousands of outgoing connections and other processes'
 * port-0 listeners live in that range and would race with ours.
 */
const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;

/** A free loopback port outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (await isFree(port)) return port;
  }
  throw new Error('no free port');
}

/** Two consecutive free ports (the backends for HAProxy and nginx). */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await freePort();
    if (await isFree(port + 1)) return port;
  }
  throw new Error('no two consecutive free ports');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Spawns a process in its own process group (so stopping it takes its workers
 * too) and resolves once a stdout line matches `ready`, bounded by `timeoutMs`.
 */
export function startProcess(command: string, args: readonly string[], ready: (line: string) => boolean, timeoutMs = 30_000): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let buffered = '';
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`${command} ${args.join(' ')}: not ready after ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        killGroup(child);
        reject(error);
      } else resolve(child);
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      if (settled) return;
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (ready(line)) finish(null);
      }
    });
    // Keep draining both pipes after readiness so the child never blocks on a full pipe.
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 8192) stderr += chunk.toString('utf8');
    });
    child.once('error', (error) => finish(error));
    child.once('exit', (code, signal) => finish(new Error(`${command} exited early (${code ?? signal})\n${stderr}`)));
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM to the group, SIGKILL after a bounded wait. */
export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      resolve();
    }, 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      // Workers of a primary that exited first get the rest of the group.
      killGroup(child, 'SIGKILL');
      resolve();
    });
    killGroup(child);
  });
}

/** Polls GET / until it answers 200 (bounded). */
export async function waitHttp(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { status } = await get(port, '198.18.0.1', false);
      if (status === 200) return;
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline) throw new Error(`port ${port}: no 200 within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function nodeLauncher(name: string, setup: string, script: string): Contender {
  return {
    name,
    setup,
    unavailable: null,
    async start() {
      const port = await freePort();
      const child = await startProcess(process.execPath, [join(APPS, script), String(port), '2'], (line) => line.startsWith('bench-ready'));
      await waitHttp(port);
      return { port, adminPort: null, stop: () => stopProcess(child) };
    },
  };
}

/**
 * Ours with the bench app. `reuse` is key.reuse: the default (unset:
 * "forward") keeps every request on a reused connection sticky, so wrk's
 * keep-alive connections, which carry a different X-Forwarded-For on every
 * request like a proxy's pooled connections, have about half of their requests
 * relayed to the other worker; "handback" moves the connection through the
 * master for them instead; "off" keys the connection by its first request
 * only, and after the hand-off the master is out of the data path.
 */
/** limits.perClient for ours-limits: every limit on, set high enough that no benchmark client is refused (what the check itself costs). */
const BENCH_PER_CLIENT = { maxConnections: 10_000, connectionsPerSecond: 1_000_000, requestsPerSecond: 1_000_000 };

function oursContender(name: string, reuse: 'off' | 'handback' | null, handoff: 'auto' | 'ipc' = 'auto', perClient: Record<string, unknown> | null = null): Contender {
  return {
    name,
    setup:
      'dist/master.js, 2 workers, key.order ["forwarded","remote"], proxyProtocol off, admin on, ' +
      (reuse === null
        ? 'key.reuse unset (default "forward": every request sticky, relayed over worker-to-worker links)'
        : reuse === 'handback'
          ? 'key.reuse "handback" (every request sticky, the connection moved through the master)'
          : `key.reuse "${reuse}" (the connection's first request decides)`) +
      (handoff === 'ipc' ? ', workers.handoff "ipc" (Node\'s IPC channel, one handle per message)' : '') +
      (perClient === null ? '' : `, limits.perClient ${JSON.stringify(perClient)} (checked on every connection and request, none refused)`),
    unavailable: null,
    async start(workdir) {
      const port = await freePort();
      const adminPort = await freePort();
      const config = join(workdir, `${name}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          listen: { host: '127.0.0.1', port },
          workers: { count: 2, app: join(APPS, 'app.js'), handoff },
          key: { order: ['forwarded', 'remote'], forwardedTrustedHops: 1, ...(reuse === null ? {} : { reuse }) },
          proxyProtocol: { mode: 'off', trustedFrom: ['127.0.0.0/8', '::1/128'] },
          ...(perClient === null ? {} : { limits: { perClient } }),
          admin: { host: '127.0.0.1', port: adminPort },
          log: { level: 'info' },
        }),
      );
      const child = await startProcess(process.execPath, [join(REPO, 'dist', 'master.js'), '--config', config], (line) => line.includes('"msg":"listening"'));
      await waitHttp(port);
      return { port, adminPort, stop: () => stopProcess(child) };
    },
  };
}

/** A daemon in the foreground, in its own process group, its output in `logFile`. */
function spawnLogged(command: string, args: readonly string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    return spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-4000);
  } catch {
    return '';
  }
}

export function has(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

/** Starts the two backends HAProxy / nginx balance over. */
async function startBackends(): Promise<{ first: number; child: ChildProcess }> {
  const first = await freePortPair();
  const child = await startProcess(process.execPath, [join(APPS, 'backends.js'), String(first), '2'], (line) => line.startsWith('bench-ready'));
  return { first, child };
}

const haproxy: Contender = {
  name: 'haproxy',
  setup: 'HAProxy, balance hdr(X-Forwarded-For) + hash-type consistent, 2 node backends, keep-alive to backends (default), default threads',
  unavailable: has('haproxy') ? null : 'haproxy not installed',
  async start(workdir) {
    const backends = await startBackends();
    const port = await freePort();
    const cfg = join(workdir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 8000',
        'defaults',
        '  mode http',
        '  timeout connect 5s',
        '  timeout client 30s',
        '  timeout server 30s',
        'frontend fe',
        `  bind 127.0.0.1:${port}`,
        '  default_backend be',
        'backend be',
        '  balance hdr(X-Forwarded-For)',
        '  hash-type consistent',
        `  server w0 127.0.0.1:${backends.first}`,
        `  server w1 127.0.0.1:${backends.first + 1}`,
        '',
      ].join('\n'),
    );
    const proxy = spawnLogged('haproxy', ['-db', '-f', cfg], join(workdir, 'haproxy.log'));
    try {
      await waitHttp(port);
    } catch (error) {
      await Promise.all([stopProcess(proxy), stopProcess(backends.child)]);
      throw new Error(`haproxy: ${(error as Error).message}\n${readLog(join(workdir, 'haproxy.log'))}`, { cause: error });
    }
    return { port, adminPort: null, stop: async () => void (await Promise.all([stopProcess(proxy), stopProcess(backends.child)])) };
  },
};

const nginx: Contender = {
  name: 'nginx',
  setup: 'nginx, hash $http_x_forwarded_for consistent, 2 node backends, upstream keepalive 64, worker_processes auto, access_log off',
  unavailable: has('nginx') ? null : 'nginx not installed',
  async start(workdir) {
    const backends = await startBackends();
    const port = await freePort();
    const prefix = join(workdir, 'nginx');
    mkdirSync(prefix, { recursive: true });
    const conf = join(prefix, 'nginx.conf');
    const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    writeFileSync(
      conf,
      [
        asRoot ? 'user root;' : '',
        'worker_processes auto;',
        'daemon off;',
        `pid ${join(prefix, 'nginx.pid')};`,
        `error_log ${join(prefix, 'error.log')} warn;`,
        'events { worker_connections 8192; }',
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fastcgi;`,
        `  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;`,
        '  upstream app {',
        '    hash $http_x_forwarded_for consistent;',
        `    server 127.0.0.1:${backends.first};`,
        `    server 127.0.0.1:${backends.first + 1};`,
        '    keepalive 64;',
        '  }',
        '  server {',
        `    listen 127.0.0.1:${port};`,
        '    location / {',
        '      proxy_pass http://app;',
        '      proxy_http_version 1.1;',
        '      proxy_set_header Connection "";',
        '    }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const proxy = spawnLogged('nginx', ['-p', prefix, '-c', conf], join(prefix, 'stderr.log'));
    try {
      await waitHttp(port);
    } catch (error) {
      await Promise.all([stopProcess(proxy), stopProcess(backends.child)]);
      throw new Error(`nginx: ${(error as Error).message}\n${readLog(join(prefix, 'stderr.log'))}\n${readLog(join(prefix, 'error.log'))}`, { cause: error });
    }
    return { port, adminPort: null, stop: async () => void (await Promise.all([stopProcess(proxy), stopProcess(backends.child)])) };
  },
};

export const CONTENDERS: readonly Contender[] = [
  oursContender('ours', null),
  oursContender('ours-handback', 'handback'),
  oursContender('ours-reuse-off', 'off'),
  oursContender('ours-ipc', null, 'ipc'),
  oursContender('ours-limits', null, 'auto', BENCH_PER_CLIENT),
  nodeLauncher('cluster-rr', 'node:cluster, SCHED_RR, 2 workers', 'cluster-rr.js'),
  nodeLauncher('sticky-session', 'sticky-session 1.1.2, 2 workers (hashes the TCP peer)', 'sticky-session.js'),
  nodeLauncher('socketio-sticky', '@socket.io/sticky 2.0.1, least-connection (its default), 2 workers', 'socketio-sticky.js'),
  haproxy,
  nginx,
  nodeLauncher('single', 'one process, no hand-off (1 worker)', 'single.js'),
];


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One GET on a new connection (`close`) with a given X-Forwarded-For; bounded by a timeout. */
export function get(port: number, xff: string, close = true): Promise<{ status: number; worker: number | null; pid: number | null }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', agent: false, headers: { 'x-forwarded-for': xff, connection: close ? 'close' : 'keep-alive' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          try {
            const parsed = JSON.parse(body) as { worker?: number; pid?: number };
            resolve({ status: res.statusCode ?? 0, worker: parsed.worker ?? null, pid: parsed.pid ?? null });
          } catch {
            resolve({ status: res.statusCode ?? 0, worker: null, pid: null });
          }
        });
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
