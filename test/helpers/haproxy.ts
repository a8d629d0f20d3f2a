import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort } from '../../bench/lib/nginx.js';
import { connectFrom, pollUntil } from './balancer.js';

/**
 * HAProxy in the foreground with `global`/`defaults` for `mode`, a frontend on
 * a free loopback port and the backend lines given; killed when `t` ends.
 * Resolves with the frontend's port once it accepts a connection (polled).
 */
export async function startHaproxy(t: Test, mode: 'tcp' | 'http', backend: readonly string[]): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sticky-haproxy-'));
  const config = join(dir, 'haproxy.cfg');
  const lines = ['global', '  maxconn 2000', 'defaults', `  mode ${mode}`, ...(mode === 'http' ? ['  option http-keep-alive'] : []), '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s'];
  lines.push('frontend fe', `  bind 127.0.0.1:${port}`, '  unique-id-format %{+X}o%ci:%cp', '  default_backend be', 'backend be', ...backend.map((line) => `  ${line}`), '');
  writeFileSync(config, lines.join('\n'));
  const haproxy = spawn('haproxy', ['-f', config, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  haproxy.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise((resolve) => haproxy.on('exit', resolve));
  t.teardown(async () => {
    haproxy.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  await pollUntil(async () => {
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`);
    try {
      (await connectFrom(port, '127.0.0.1')).destroy();
      return true;
    } catch {
      return undefined;
    }
  });
  return port;
}
