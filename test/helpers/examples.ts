import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Test } from 'tap';
import { freePort } from '../../bench/lib/nginx.js';
import { ROOT, pollUntil, which } from './balancer.js';
import { startHaproxy } from './haproxy.js';

/** The examples folder. */
export const EXAMPLES = join(ROOT, 'examples');

/** The command an example's README gives to start it: the first `node …` line of its first sh block. */
export function readmeCommand(example: string): string[] {
  const readme = readFileSync(join(EXAMPLES, example, 'README.md'), 'utf8');
  const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const line = block.split('\n').find((candidate) => candidate.startsWith('node '));
  if (line === undefined) throw new Error(`${example}/README.md has no "node …" command in its first sh block`);
  return line.trim().split(/\s+/);
}

/** A started example. */
export interface RunningExample {
  readonly port: number;
  readonly logs: Array<Record<string, unknown>>;
  stop(): Promise<number | null>;
}

/**
 * Starts an example with its README's own command, from its folder, on a free
 * port (`--port N` appended, which the command line and the API example both
 * take), and waits for its 'listening' line.
 */
export async function startExample(t: Test, example: string): Promise<RunningExample> {
  const [command, ...args] = readmeCommand(example);
  const port = await freePort();
  const proc = spawn(command === 'node' ? process.execPath : (command as string), [...args, '--port', String(port)], { cwd: join(EXAMPLES, example), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: proc.stdout }).on('line', (text) => {
    try {
      logs.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<number | null> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    return exited;
  };
  t.teardown(stop);
  await pollUntil(() => {
    if (proc.exitCode !== null) throw new Error(`${example} exited ${proc.exitCode}: ${stderr}`);
    return logs.some((line) => line.msg === 'listening') ? true : undefined;
  }, 60_000);
  return { port, logs, stop };
}

/** HAProxy in HTTP mode in front of `upstream`, sending PROXY v2 on every backend connection; null when not installed. */
export async function startHaproxyV2(t: Test, upstream: number): Promise<{ port: number } | null> {
  if (which('haproxy') === null) return null;
  return { port: await startHaproxy(t, 'http', [`server s1 127.0.0.1:${upstream} send-proxy-v2`]) };
}

/** An HTTP answer: status, JSON body, and the cookie it set. */
export interface JsonAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly setCookie: string | null;
}

/** One request from `localAddress` (a client of its own, as a proxy in front sees it), on `agent`. */
export function requestFrom(port: number, localAddress: string, method: string, path: string, options: { cookie?: string; agent?: http.Agent | false } = {}): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, localAddress, method, path, agent: options.agent ?? false, headers: options.cookie ? { cookie: options.cookie } : {} },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => {
          let body: Record<string, unknown>;
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            body = { text };
          }
          const cookie = res.headers['set-cookie']?.[0]?.split(';')[0] ?? null;
          resolve({ status: res.statusCode ?? 0, body, setCookie: cookie });
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The loopback address of client `i` (127.0.0.2 onwards): each client a different address. */
export function clientAddress(i: number): string {
  return `127.0.${1 + Math.floor(i / 250)}.${(i % 250) + 2}`;
}
