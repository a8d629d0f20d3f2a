/**
 * key.reuse through a real nginx: keep-alive throughput of
 * `handback`, `forward`, `close` and `off` with nginx as an HTTP reverse proxy with
 * upstream keep-alive in front of the balancer (2 workers, demo app), wrk
 * sending a random X-Forwarded-For from a pool of 1000 on every request (so
 * consecutive requests on nginx's pooled connections belong to different
 * workers about half of the time), nginx appending its peer (hops 2).
 *
 *     npm run build && node dist/bench/reuse.js [--duration 5] [--rounds 3] [--connections 32]
 *
 * Rounds interleave the modes (handback, close, off, handback, ...) so that
 * machine noise spreads over all of them; the table shows medians. Every run
 * is bounded: wrk runs for --duration and is killed 15 s past it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, startMaster } from './lib/master.js';
import { startNginx } from './lib/nginx.js';

type Mode = 'handback' | 'forward' | 'close' | 'off';

interface Options {
  durationS: number;
  rounds: number;
  connections: number;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { durationS: 5, rounds: 3, connections: 32 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--duration') options.durationS = value;
    else if (argv[i] === '--rounds') options.rounds = value;
    else if (argv[i] === '--connections') options.connections = value;
    else throw new Error(`unknown option ${argv[i]}`);
  }
  return options;
}

const WRK_SCRIPT = `
math.randomseed(os.time())
request = function()
  local n = math.random(0, 999)
  return wrk.format("GET", "/", { ["X-Forwarded-For"] = "10.3." .. math.floor(n / 250) .. "." .. (n % 250 + 1) })
end
`;

interface WrkResult {
  rps: number;
  errors: number;
}

function wrk(port: number, scriptPath: string, options: Options, durationS: number): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t2', `-c${options.connections}`, `-d${durationS}s`, '-s', scriptPath, `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), (durationS + 15) * 1000);
    child.once('exit', () => {
      clearTimeout(killer);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      if (!Number.isFinite(rps)) {
        reject(new Error(`wrk gave no result: ${out}`));
        return;
      }
      const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0);
      resolve({ rps, errors });
    });
  });
}

async function measure(mode: Mode, scriptPath: string, options: Options): Promise<WrkResult> {
  const master = await startMaster({ key: { reuse: mode, forwardedTrustedHops: 2 } });
  try {
    const nginx = await startNginx(master.port, { keepalive: 32, workerConnections: 4096, location: 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;' });
    try {
      await wrk(nginx.port, scriptPath, options, 1); // warm-up
      return await wrk(nginx.port, scriptPath, options, options.durationS);
    } finally {
      await nginx.stop();
    }
  } finally {
    await master.stop();
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  for (const tool of ['wrk', 'nginx']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (apt-get install ${tool})`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'sticky-bench-reuse-'));
  const scriptPath = join(dir, 'xff.lua');
  writeFileSync(scriptPath, WRK_SCRIPT);
  const modes: Mode[] = ['handback', 'forward', 'close', 'off'];
  const results = new Map<Mode, WrkResult[]>(modes.map((mode) => [mode, []]));
  for (let round = 0; round < options.rounds; round++) {
    for (const mode of modes) {
      const result = await measure(mode, scriptPath, options);
      results.get(mode)?.push(result);
      process.stderr.write(`round ${round + 1} ${mode}: ${result.rps.toFixed(0)} req/s, ${result.errors} errors\n`);
    }
  }
  const offMedian = median((results.get('off') ?? []).map((r) => r.rps));
  const lines = [
    `key.reuse through nginx (upstream keep-alive 32), wrk -t2 -c${options.connections}, random X-Forwarded-For (pool 1000), 2 workers, demo app`,
    `${options.rounds} rounds × ${options.durationS} s · ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · node ${process.version} · ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| key.reuse | keep-alive req/s (median) | × off | min–max | wrk errors | correct routing |',
    '|---|---|---|---|---|---|',
  ];
  for (const mode of modes) {
    const runs = results.get(mode) ?? [];
    const rates = runs.map((r) => r.rps);
    const med = median(rates);
    lines.push(
      `| ${mode} | ${med.toFixed(0)} | ${(med / offMedian).toFixed(2)} | ${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)} | ${runs.reduce((n, r) => n + r.errors, 0)} | ${mode === 'off' ? 'no (≈ half misrouted)' : 'yes'} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
