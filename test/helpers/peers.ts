import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil } from './balancer.js';

/** A port free on every one of `hosts` right now (the same number on each loopback address). */
export async function freePortOn(hosts: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer().listen(0, hosts[0], () => {
        const { port: taken } = server.address() as net.AddressInfo;
        server.close(() => resolve(taken));
      });
      server.on('error', reject);
    });
    const free = await Promise.all(
      hosts.slice(1).map(
        (host) =>
          new Promise<boolean>((resolve) => {
            const server = net.createServer().listen(port, host, () => server.close(() => resolve(true)));
            server.on('error', () => resolve(false));
          }),
      ),
    );
    if (free.every(Boolean)) return port;
  }
  throw new Error('no port free on every host');
}

/** Polls `check` until it holds (pollUntil, for a yes/no check). */
function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<true> {
  return pollUntil(async () => ((await check()) ? true : undefined), timeoutMs);
}

/** A running Debian redis-server on a loopback port, no persistence. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePortOn(['127.0.0.1']);
  const dir = mkdtempSync(join(tmpdir(), 'sticky-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  await until(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.write('PING\r\n');
          socket.once('data', (data) => {
            socket.destroy();
            resolve(data.toString().startsWith('+PONG'));
          });
        });
        socket.once('error', () => resolve(false));
      }),
    10_000,
  );
  return { url: `redis://127.0.0.1:${port}/0`, port, stop: () => stopProcess(proc) };
}

/** A running Debian dnsmasq answering from a hosts file on a loopback port; `setHosts` rewrites it (SIGHUP rereads). */
export interface DnsServer {
  readonly server: string;
  setHosts(lines: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startDnsmasq(lines: readonly string[]): Promise<DnsServer> {
  const port = await freePortOn(['127.0.0.1']);
  const dir = mkdtempSync(join(tmpdir(), 'sticky-dns-'));
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, `${lines.join('\n')}\n`, { mode: 0o644 });
  const proc: ChildProcess = spawn(
    'dnsmasq',
    ['--keep-in-foreground', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--pid-file=', '--user=root', '--local-ttl=0', '--cache-size=0', '--log-facility=-'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  proc.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  await until(() => log.includes('read ') || proc.exitCode !== null, 10_000);
  if (proc.exitCode !== null) throw new Error(`dnsmasq exited: ${log}`);
  return {
    server: `127.0.0.1:${port}`,
    setHosts: async (next) => {
      const reads = log.split('read ').length;
      writeFileSync(hosts, `${next.join('\n')}\n`, { mode: 0o644 });
      proc.kill('SIGHUP');
      await until(() => log.split('read ').length > reads, 10_000);
    },
    stop: () => stopProcess(proc),
  };
}

function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}
