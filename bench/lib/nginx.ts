import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Debian's nginx as an HTTP reverse proxy with upstream keep-alive in front of
 * the balancer (a pool of connections reused across clients: the case
 * key.reuse is for). Shared by the interop tests and bench/reuse.ts.
 */

/** A running nginx. */
export interface RunningNginx {
  readonly port: number;
  readonly proc: ChildProcess;
  /** The error log so far (for failure messages). */
  errorLog(): string;
  stop(): Promise<void>;
}

/** Options: `location` adds directives to the proxied location, `http` to the http block. */
export interface NginxOptions {
  readonly location?: string;
  readonly http?: string;
  /** Idle connections nginx keeps to the balancer (upstream `keepalive`). */
  readonly keepalive?: number;
  readonly workerConnections?: number;
}

/** A loopback port that was free a moment ago (nginx needs a fixed one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on a loopback port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts nginx in front of `upstreamPort`; everything (pid, logs, temp files)
 * lives in a temp dir. Resolves once it accepts connections (polled, at most
 * 20 s); rejects if nginx exits first.
 */
export async function startNginx(upstreamPort: number, options: NginxOptions = {}): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'sticky-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const port = await freePort();
  const conf = `
worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
${process.getuid?.() === 0 ? 'user root root;' : ''}
events { worker_connections ${options.workerConnections ?? 1024}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${options.http ?? ''}
  upstream balancer {
    server 127.0.0.1:${upstreamPort};
    keepalive ${options.keepalive ?? 16};
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://balancer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      ${options.location ?? ''}
    }
  }
}
`;
  const confPath = join(dir, 'nginx.conf');
  writeFileSync(confPath, conf);
  const proc = spawn('nginx', ['-c', confPath, '-p', dir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const errorLog = (): string => {
    try {
      return stderr + readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return stderr;
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${errorLog()}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`nginx did not accept connections within 20 s: ${errorLog()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    port,
    proc,
    errorLog,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGQUIT');
      await exited;
    },
  };
}
