import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pollUntil, which } from './balancer.js';

/** A running Debian nginx in front of the balancer (HTTP reverse proxy). */
export interface RunningNginx {
  readonly port: number;
  readonly proc: ChildProcess;
  /** The error log so far (for failure messages). */
  errorLog(): string;
  stop(): Promise<void>;
}

/** Why nginx tests cannot run here, or null (`.ci/run` installs nginx). */
export function nginxMissing(): string | null {
  return which('nginx') === null ? 'nginx is not installed (apt-get install nginx; .ci/run does it)' : null;
}

/**
 * Starts nginx as an HTTP reverse proxy with upstream keep-alive (a pool of
 * connections to the balancer reused across clients: the case key.reuse is
 * for). Everything (pid, logs, temp files) lives in a temp dir; `location`
 * adds directives to the proxied location, `http` to the http block.
 */
export async function startNginx(upstreamPort: number, options: { location?: string; http?: string } = {}): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'sticky-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const port = await freePort();
  const conf = `
worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
${process.getuid?.() === 0 ? 'user root root;' : ''}
events { worker_connections 1024; }
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
    keepalive 16;
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
  await pollUntil(async () => {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${errorLog()}`);
    return (await canConnect(port)) ? true : undefined;
  });
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

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
