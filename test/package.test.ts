import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { ROOT, demoGet, pollUntil } from './helpers/balancer.js';
import { freePort } from '../bench/lib/nginx.js';

t.setTimeout(240_000);

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** npm with this Node first on PATH (the line under test runs the install scripts too). */
function npm(args: string[], cwd: string): string {
  return execFileSync(NPM, args, { cwd, encoding: 'utf8', env: { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env.PATH ?? ''}` }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
}

t.test('the tarball holds what a user runs, and nothing of the tests or benchmarks', async (t) => {
  // --ignore-scripts: dist/ is already built by the test command; rebuilding it under running tests would not be safe.
  const [pack] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT)) as Array<{ files: Array<{ path: string }> }>;
  const files = (pack?.files ?? []).map((file) => file.path);
  for (const wanted of ['dist/master.js', 'dist/src/index.js', 'dist/src/index.mjs', 'dist/src/index.d.ts', 'dist/src/index.d.mts', 'dist/src/master/api.js', 'dist/src/master/main.js', 'dist/src/worker/main.js', 'dist/src/worker/runtime.js', 'dist/workers/demo-app.js', 'native/fdpass.c', 'binding.gyp', 'README.md', 'LICENSE', 'CHANGELOG.md', 'package.json', 'config.schema.json']) {
    t.ok(files.includes(wanted), `has ${wanted}`);
  }
  t.same(files.filter((file) => /^(dist\/bench|dist\/test|test|bench|examples|src|workers|\.ci)\//.test(file)), [], 'no tests, benchmarks, examples or TypeScript sources');
});

/** Packs the package and installs the tarball into a new empty project; its directory. */
function installInto(t: Test, extra: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'sticky-consumer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  npm(['pack', '--ignore-scripts', '--pack-destination', dir], ROOT);
  const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz')) as string;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  npm(['install', '--no-audit', '--no-fund', '--prefer-offline', ...extra, join(dir, tarball)], dir);
  return dir;
}

/** `npx sticky-session-ts --config …` in `dir`; resolves with its log lines once it served a request, then stops it. */
async function serveWithNpx(dir: string): Promise<Array<Record<string, unknown>>> {
  const port = await freePort();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ listen: { host: '127.0.0.1', port }, workers: { count: 2 }, admin: false }));
  // Its own process group: npx runs the command as a child, and SIGTERM must reach the master under it.
  const proc = spawn('npx', ['sticky-session-ts', '--config', 'config.json'], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env.PATH ?? ''}` } });
  const logs: Array<Record<string, unknown>> = [];
  createInterface({ input: proc.stdout }).on('line', (text) => {
    try {
      logs.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  try {
    await pollUntil(() => {
      if (proc.exitCode !== null) throw new Error(`npx sticky-session-ts exited ${proc.exitCode}`);
      return logs.some((line) => line.msg === 'listening') ? true : undefined;
    }, 60_000);
    const answer = await demoGet(port, { 'x-forwarded-for': '198.51.100.77' });
    logs.push({ answered: answer.key });
  } finally {
    process.kill(-(proc.pid as number), 'SIGTERM');
    await exited;
    // The master drains and exits on SIGTERM; its end closes the pipe.
    await new Promise<void>((resolve) => (proc.stdout.destroyed ? resolve() : proc.stdout.once('close', () => resolve())));
  }
  return logs;
}

t.test('npm pack → npm install into an empty project → npx sticky-session-ts serves; the API type-checks for import and require', async (t) => {
  const dir = installInto(t, []);
  t.ok(existsSync(join(dir, 'node_modules', 'sticky-session-ts', 'build', 'Release', 'fdpass.node')), 'the install built the addon');
  const logs = await serveWithNpx(dir);
  t.ok(logs.some((line) => line.answered === '198.51.100.77'), 'the demo app answered through the installed balancer');
  t.notOk(logs.some((line) => typeof line.msg === 'string' && line.msg.includes('addon is not built')), 'no addon warning');
  t.equal(logs.find((line) => line.msg === 'listening')?.handoff, 'fd-channel', 'batched hand-off');

  writeFileSync(join(dir, 'esm.mts'), "import { startBalancer, connectionInfo, BalancerStartError, type RunningBalancer } from 'sticky-session-ts';\nconst started: Promise<RunningBalancer> = startBalancer({ listen: { port: 0 }, workers: { count: 2 } });\nvoid started;\nconst info = connectionInfo(null);\nconst key: string | undefined = info?.key;\nvoid key;\nvoid BalancerStartError;\n");
  writeFileSync(join(dir, 'cjs.cts'), "import sticky = require('sticky-session-ts');\nconst started: Promise<sticky.RunningBalancer> = sticky.startBalancer({ key: { order: ['proxy', 'remote'] } });\nvoid started;\n");
  writeFileSync(join(dir, 'bundler.ts'), "import { startBalancer } from 'sticky-session-ts';\nvoid startBalancer({ admin: false });\n");
  const typeRoots = join(ROOT, 'node_modules', '@types');
  const tsc = (args: string[]): string => {
    try {
      return execFileSync(process.execPath, [TSC, '--noEmit', '--strict', '--skipLibCheck', '--typeRoots', typeRoots, '--types', 'node', ...args], { cwd: dir, encoding: 'utf8' });
    } catch (error) {
      return `${(error as { stdout?: string }).stdout ?? ''}${(error as Error).message}`;
    }
  };
  t.equal(tsc(['--module', 'node16', '--moduleResolution', 'node16', 'esm.mts', 'cjs.cts']), '', 'moduleResolution node16: import and require type-check');
  t.equal(tsc(['--module', 'esnext', '--moduleResolution', 'bundler', 'bundler.ts']), '', 'moduleResolution bundler type-checks');
  writeFileSync(join(dir, 'wrong.mts'), "import { startBalancer } from 'sticky-session-ts';\nvoid startBalancer({ listen: { port: 'eighty' } });\n");
  t.match(tsc(['--module', 'node16', '--moduleResolution', 'node16', 'wrong.mts']), /error TS/, 'a wrong option type is a type error (the check can fail)');
});

t.test('installed without running install scripts (as without a C++ toolchain): it serves over IPC and warns on start', async (t) => {
  const dir = installInto(t, ['--ignore-scripts']);
  t.notOk(existsSync(join(dir, 'node_modules', 'sticky-session-ts', 'build', 'Release', 'fdpass.node')), 'no addon');
  const logs = await serveWithNpx(dir);
  t.ok(logs.some((line) => line.answered === '198.51.100.77'), 'served');
  const warning = logs.find((line) => typeof line.msg === 'string' && line.msg.includes('addon is not built'));
  t.equal(warning?.level, 'warn', 'one warn line says the addon is missing and what it costs');
  t.equal(logs.find((line) => line.msg === 'listening')?.handoff, 'ipc', "hand-offs over Node's IPC");
});
