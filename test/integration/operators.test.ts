import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { MASTER, ROOT, request, startBalancer, writeConfig } from '../helpers/balancer.js';
import { getMetricsText } from '../helpers/admin.js';
import { parseExposition } from '../helpers/prometheus.js';

/** Runs the command to its end: exit code, output, and how long it took. */
function run(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MASTER, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`still running after ${timeoutMs} ms: ${args.join(' ')}\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A temporary directory of the master's own (TMPDIR), so that what it leaves there is its own, whatever other tests run meanwhile. */
function ownTmp(): string {
  return mkdtempSync(join(tmpdir(), 'sticky-own-tmp-'));
}

/** Holds a port on 127.0.0.1 (an "address in use" for the balancer). */
function holdPort(t: Tap.Test): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    t.teardown(() => server.close());
  });
}

const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

t.test('--help lists every flag, the config sections and the signals; --version the version', async (t) => {
  const help = await run(['--help']);
  t.equal(help.code, 0);
  for (const word of ['--config', '--port', '--workers', '--admin-port', '--pretty', '--check', '-t', '--help', '--version']) t.match(help.stdout, word, `flag ${word}`);
  for (const section of ['listen', 'workers', 'key', 'proxyProtocol', 'limits', 'admin', 'log', 'health', 'stickyCookie', 'inspect', 'tls']) t.match(help.stdout, new RegExp(`^  ${section} `, 'm'), `section ${section}`);
  for (const signal of ['SIGHUP', 'SIGTTIN', 'SIGTTOU', 'SIGUSR2', 'SIGTERM']) t.match(help.stdout, signal, `signal ${signal}`);
  const version = await run(['--version']);
  t.equal(version.code, 0);
  t.equal(version.stdout, `${PACKAGE.version}\n`);
  const bad = await run(['--bogus']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /Unknown option '--bogus'.*see --help/);
});

t.test('--check: ok on the repository config without binding; 2 with every error, or when the app does not load', async (t) => {
  // The config's own ports are held: a check that bound anything would fail.
  const port = await holdPort(t);
  const adminPort = await holdPort(t);
  const good = writeConfig({ listen: { host: '127.0.0.1', port }, admin: { host: '127.0.0.1', port: adminPort } });
  const ok = await run(['--check', '--config', good]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /: ok \(2 workers, app .*demo-app\.js loads\)\n$/);
  t.equal(ok.stdout.split('\n').length, 2, 'one line');
  const repository = await run(['-t']);
  t.equal(repository.code, 0, 'the repository config.json (the README shows this run)');
  t.match(repository.stdout, /^config\.json: ok/);

  const broken = writeConfig({ workers: { count: 'two', ap: './x.js' } });
  const errors = await run(['--check', '--config', broken]);
  t.equal(errors.code, 2);
  t.match(errors.stderr, 'workers.count: expected a positive integer or "auto", got "two"');
  t.match(errors.stderr, 'workers: unknown key "ap" (did you mean "app"?)');

  const throwing = writeConfig({ workers: { count: 1, app: join(ROOT, 'test', 'fixtures', 'throwing-app.js') } });
  const app = await run(['--check', '--config', throwing]);
  t.equal(app.code, 2);
  t.match(app.stderr, /does not load:\nError: boom at load\n\s+at loadConfiguration \(.*throwing-app\.js:4/, 'the app error with its stack');
});

t.test('a first start whose app does not load exits 1 within 30 s with the stack, leaving no socket file', async (t) => {
  for (const [name, app, expected] of [
    ['missing', join(tmpdir(), 'sticky-no-such-app.js'), /Cannot find module .*sticky-no-such-app\.js[^\n]*\n\s+at /],
    ['throws at load', join(ROOT, 'test', 'fixtures', 'throwing-app.js'), /Error: boom at load\n\s+at loadConfiguration \(.*throwing-app\.js:4/],
  ] as const) {
    const tmp = ownTmp();
    // key.reuse "forward" makes the master create its links' directory (with a socket per worker) on the first fork.
    const config = writeConfig({ workers: { count: 2, app }, key: { reuse: 'forward' } });
    const result = await run(['--config', config], { TMPDIR: tmp });
    t.equal(result.code, 1, `${name}: exit 1`);
    t.ok(result.ms < 30_000, `${name}: within 30 s (${result.ms} ms)`);
    t.match(result.stderr, /the worker app .* failed to load:\n/, `${name}: says what failed`);
    t.match(result.stderr, expected, `${name}: the stack`);
    t.notMatch(result.stdout, /"msg":"listening"/, `${name}: never said listening`);
    t.notMatch(result.stdout, /respawning/, `${name}: no respawn`);
    t.same(readdirSync(tmp), [], `${name}: no directory or socket file left in its TMPDIR`);
  }
});

t.test('a port in use: exit 1 with one clear line, nothing announced, nothing left', async (t) => {
  const taken = await holdPort(t);
  for (const [name, overrides, line] of [
    ['public port', { listen: { host: '127.0.0.1', port: taken } }, `cannot listen on 127.0.0.1:${taken}: EADDRINUSE (address already in use)`],
    ['admin port', { admin: { host: '127.0.0.1', port: taken } }, `cannot listen on 127.0.0.1:${taken} (admin API): EADDRINUSE (address already in use)`],
  ] as const) {
    const tmp = ownTmp();
    const result = await run(['--config', writeConfig({ ...overrides, key: { reuse: 'forward' } })], { TMPDIR: tmp });
    t.equal(result.code, 1, `${name}: exit 1`);
    t.equal(result.stderr, `sticky-session-ts: ${line}\n`, `${name}: one line`);
    t.notMatch(result.stdout, /"msg":"listening"/, `${name}: 'listening' never logged`);
    t.same(readdirSync(tmp), [], `${name}: nothing left in its TMPDIR`);
  }
});

/** What a process was given: its environment and command line, as /proc shows them to anyone who may read them. */
function exposed(pid: number): string {
  return `${readFileSync(`/proc/${pid}/environ`, 'latin1')}\n${readFileSync(`/proc/${pid}/cmdline`, 'latin1')}`;
}

t.test('no secret in any worker or grandchild environment or command line; the admin API wants its token', async (t) => {
  const secrets = { cookie: 'cookie-secret-0123456789abcdef', token: 'admin-token-0123456789abcdef' };
  const balancer = await startBalancer({
    workers: { count: 2, app: join(ROOT, 'test', 'fixtures', 'spawning-app.js') },
    stickyCookie: { name: 'srv', secret: secrets.cookie },
    admin: { host: '127.0.0.1', port: 0, token: secrets.token },
    key: { order: ['cookie', 'remote'], cookie: 'sid' },
  });
  t.teardown(() => balancer.stop());
  const seen = new Map<number, number>();
  for (let attempt = 0; attempt < 200 && seen.size < 2; attempt++) {
    const answer = await request(balancer.port, { headers: { cookie: `sid=client-${attempt}` } });
    const { pid, child } = JSON.parse(answer.body.toString()) as { pid: number; child: number };
    seen.set(pid, child);
  }
  t.equal(seen.size, 2, 'both workers answered');
  for (const [worker, grandchild] of seen) {
    for (const [who, pid] of [['worker', worker], ['grandchild', grandchild]] as const) {
      const text = exposed(pid);
      t.ok(text.length > 0, `${who} ${pid}: read`);
      for (const [name, secret] of Object.entries(secrets)) t.notOk(text.includes(secret), `${who} ${pid}: no ${name} secret`);
      t.notMatch(text, /STICKY_CONFIG/, `${who} ${pid}: no config in the environment`);
    }
  }
  t.notOk(exposed(balancer.proc.pid as number).includes(secrets.cookie), 'nor in the master');

  const admin = balancer.adminPort as number;
  const without = await request(admin, { path: '/workers' });
  t.equal(without.status, 401, 'no token: 401');
  t.equal(without.headers['www-authenticate'], 'Bearer');
  t.equal((await request(admin, { path: '/workers', headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401, 'wrong token: 401');
  const withToken = await request(admin, { path: '/workers', headers: { authorization: `Bearer ${secrets.token}` } });
  t.equal(withToken.status, 200, 'the token: 200');
  t.equal((JSON.parse(withToken.body.toString()) as unknown[]).length, 2);
});

t.test('logs: level names and ISO times in JSON; --pretty prints lines for people', async (t) => {
  const json = await startBalancer({ workers: { count: 1 } });
  const listening = json.logs.find((line) => line.msg === 'listening') as Record<string, unknown>;
  await json.stop();
  t.equal(listening.level, 'info');
  t.match(listening.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  const config = writeConfig({ workers: { count: 1 } });
  const child = spawn(process.execPath, [MASTER, '--config', config, '--pretty'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no pretty 'listening' line: ${output}`)), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (/INFO.*listening/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  const line = output.split('\n').find((text) => /listening/.test(text) && !/admin/.test(text)) as string;
  t.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): listening /, 'time, level name, pid, message');
  t.throws(() => JSON.parse(line), 'not JSON');
});

t.test('metrics: the master process labelled process="master", worker series by slot', async (t) => {
  const balancer = await startBalancer({ workers: { count: 2 } });
  t.teardown(() => balancer.stop());
  for (let i = 0; i < 20; i++) await request(balancer.port, { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
  const exposition = parseExposition(await getMetricsText(balancer.adminPort as number));
  const samples = (name: string) => exposition.samples.filter((sample) => sample.name === name);
  const masterCpu = samples('process_cpu_user_seconds_total');
  t.equal(masterCpu.length, 1);
  t.same(masterCpu[0]?.labels, { process: 'master' });
  for (const name of ['process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_active_handles_total']) t.equal(samples(name)[0]?.labels.process, 'master', name);
  const served = samples('sticky_worker_connections_total');
  t.same(served.map((sample) => sample.labels.worker).sort(), ['0', '1'], 'one series per worker slot');
  t.equal(served.reduce((sum, sample) => sum + sample.value, 0), 20, 'together they count every connection');
  t.same(samples('sticky_worker_process_resident_memory_bytes').map((sample) => sample.labels.worker).sort(), ['0', '1']);
});
