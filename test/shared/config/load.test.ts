import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { loadConfig, parseCli, resolveConfig } from '../../../src/shared/config/load.js';
import { configJsonSchema } from '../../../src/shared/config/schema.js';

/** The repository root. */
const ROOT_DIR = resolve(__dirname, '..', '..', '..');

function tempConfig(text: string): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sticky-config-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, text);
  return { dir, path };
}

t.test('defaults: an empty object gives the documented defaults', async (t) => {
  const result = resolveConfig({}, {}, null);
  t.ok(result.ok);
  if (!result.ok) return;
  t.match(result.config, {
    listen: { host: '0.0.0.0', port: 8080 },
    workers: { count: 2, app: './dist/workers/demo-app.js', heartbeatMs: 1000, unresponsiveMs: 3000, ackTimeoutMs: 2000, killUnresponsiveMs: 60_000 },
    key: { order: ['proxy', 'forwarded', 'remote'], cookie: 'sid', forwardedTrustedHops: 1 },
    proxyProtocol: { mode: 'optional', trustedFrom: ['127.0.0.0/8', '::1/128'] },
    limits: { peekBytes: 16384, peekTimeoutMs: 5000 },
    admin: { host: '127.0.0.1', port: 9090 },
    log: { level: 'info' },
    workerCount: 2,
    configPath: null,
  });
  t.equal(result.config.appPath, join(ROOT_DIR, 'dist', 'workers', 'demo-app.js'), "no workers.app: the package's own demo app");
  t.ok(Object.isFrozen(result.config) && Object.isFrozen(result.config.key.order), 'deeply frozen');
});

t.test('the repository config.json is valid and equals the defaults', async (t) => {
  const result = loadConfig([], join(__dirname, '..', '..', '..'));
  t.ok(result.ok, result.ok ? 'loads' : result.message);
  const defaults = resolveConfig({}, {}, null);
  if (result.ok && defaults.ok) {
    const { configPath: _a, appPath: _b, $schema: _s, ...fromFile } = result.config;
    const { configPath: _c, appPath: _d, ...builtIn } = defaults.config;
    t.same(fromFile, builtIn);
  }
});

t.test('invalid values: one line naming the path and the expectation', async (t) => {
  const cases: Array<{ name: string; input: unknown; line: string | RegExp }> = [
    { name: 'count as text', input: { workers: { count: 'two' } }, line: 'workers.count: expected a positive integer or "auto", got "two"' },
    { name: 'count zero', input: { workers: { count: 0 } }, line: /^workers\.count: expected a positive integer.*, got 0$/ },
    { name: 'port too big', input: { listen: { port: 70000 } }, line: 'listen.port: expected a port number (0-65535), got 70000' },
    { name: 'unknown top-level key', input: { lisen: {} }, line: '(config): unknown key "lisen" (did you mean "listen"?)' },
    { name: 'unknown nested keys', input: { key: { order: ['remote'], cokie: 'x', hops: 1 } }, line: 'key: unknown keys "cokie" (did you mean "cookie"?), "hops"' },
    { name: 'bad key source', input: { key: { order: ['ip'] } }, line: /^key\.order\.0: .*got "ip"$/ },
    { name: 'duplicate key source', input: { key: { order: ['remote', 'remote'] } }, line: /^key\.order: expected each key source at most once/ },
    { name: 'bad cookie name', input: { key: { cookie: 'a b' } }, line: /^key\.cookie: expected a cookie name/ },
    { name: 'bad proxy mode', input: { proxyProtocol: { mode: 'sometimes' } }, line: /^proxyProtocol\.mode: .*got "sometimes"$/ },
    { name: 'bad CIDR', input: { proxyProtocol: { trustedFrom: ['10.0.0.0/33'] } }, line: /^proxyProtocol\.trustedFrom: / },
    { name: 'missing nested value', input: { stickyCookie: { name: 'srv' } }, line: /^stickyCookie\.secret: .*got nothing$/ },
    { name: 'not an object', input: [], line: /^\(config\): .*got \[\]$/ },
    { name: 'heartbeat not shorter than unresponsiveMs', input: { workers: { heartbeatMs: 3000 } }, line: /^workers\.heartbeatMs: expected less than workers\.unresponsiveMs/ },
    { name: 'negative killUnresponsiveMs', input: { workers: { killUnresponsiveMs: -1 } }, line: /^workers\.killUnresponsiveMs: / },
  ];
  for (const c of cases) {
    const result = resolveConfig(c.input, {}, null);
    t.notOk(result.ok, `${c.name}: rejected`);
    if (!result.ok) {
      t.notMatch(result.message, /\n/, `${c.name}: one line`);
      if (typeof c.line === 'string') t.equal(result.message, c.line, c.name);
      else t.match(result.message, c.line, c.name);
    }
  }
});

t.test('flags override the file; auto means one worker per CPU', async (t) => {
  const result = resolveConfig({ listen: { port: 1 }, workers: { count: 5 } }, { port: 8081, workers: 'auto' }, null);
  t.ok(result.ok);
  if (result.ok) {
    t.equal(result.config.listen.port, 8081);
    t.equal(result.config.workerCount, availableParallelism());
  }
  t.same(parseCli(['--config', 'x.json', '--port', '80', '--workers', '3']), { ok: true, flags: { config: 'x.json', port: 80, workers: 3 }, action: 'start' });
  t.same(parseCli(['--admin-port', '9191', '--pretty']), { ok: true, flags: { adminPort: 9191, pretty: true }, action: 'start' });
  for (const [argv, action] of [[['--help'], 'help'], [['-h'], 'help'], [['--version'], 'version'], [['-v'], 'version'], [['--check'], 'check'], [['-t', '--config', 'x.json'], 'check']] as const) {
    t.match(parseCli(argv), { ok: true, action }, argv.join(' '));
  }
  const withAdminPort = resolveConfig({ admin: false }, { adminPort: 9191, pretty: true }, null);
  t.match(withAdminPort, { ok: true, config: { admin: { host: '127.0.0.1', port: 9191 }, log: { pretty: true } } }, '--admin-port turns on an admin API the file turned off');
  const bad: Array<[string[], RegExp]> = [
    [['--port', '65536'], /^--port: expected a port number/],
    [['--port', '-1'], /^command line: Option '--port' argument is ambiguous\. \(see --help\)$/],
    [['--admin-port', 'x'], /^--admin-port: expected a port number/],
    [['--workers', 'two'], /^--workers: expected a positive integer or "auto", got "two"$/],
    [['--workers', '0'], /^--workers: /],
    [['--bogus'], /^command line: /],
    [['positional'], /^command line: /],
  ];
  for (const [argv, line] of bad) {
    const parsed = parseCli(argv);
    t.notOk(parsed.ok, argv.join(' '));
    if (!parsed.ok) t.match(parsed.message, line);
  }
});

t.test('files: relative app path, unreadable file, bad JSON, missing default file', async (t) => {
  const { dir, path } = tempConfig(JSON.stringify({ workers: { count: 1, app: './app.js' } }));
  const loaded = loadConfig(['--config', path]);
  t.ok(loaded.ok);
  if (loaded.ok) {
    t.equal(loaded.config.appPath, join(dir, 'app.js'), 'workers.app is relative to the config file');
    t.equal(loaded.config.configPath, path);
  }
  const json = tempConfig('{ "listen": ');
  const badJson = loadConfig(['--config', json.path]);
  t.match(badJson, { ok: false, message: /not valid JSON/ });
  t.match(loadConfig(['--config', join(dir, 'nope.json')]), { ok: false, message: /cannot read config \(ENOENT\)/ });
  const empty = mkdtempSync(join(tmpdir(), 'sticky-config-'));
  const defaults = loadConfig([], empty);
  t.match(defaults, { ok: true, config: { configPath: null, workerCount: 2 } }, 'no ./config.json: built-in defaults');
  t.match(loadConfig(['--port', 'x'], empty), { ok: false, message: /^--port/ });
});

t.test('config.schema.json is the zod schema as JSON Schema (npm run schema writes it), and a config may name it', async (t) => {
  const shipped = JSON.parse(readFileSync(join(ROOT_DIR, 'config.schema.json'), 'utf8')) as unknown;
  t.same(shipped, JSON.parse(JSON.stringify(configJsonSchema())), 'in sync with src/shared/config/schema.ts');
  const withSchema = resolveConfig({ $schema: './config.schema.json', listen: { port: 0 } }, {}, null);
  t.ok(withSchema.ok, '"$schema" is accepted');
  const repository = loadConfig(['--config', join(ROOT_DIR, 'config.json')]);
  t.ok(repository.ok, "the repository's config.json (which names it) loads");
});

t.test('every error at once, each naming the file and the path, with a did-you-mean for a typo', async (t) => {
  const { path } = tempConfig(JSON.stringify({ workers: { count: 'two', ap: './x.js' }, lisen: {}, admin: { host: '0.0.0.0' }, log: { levle: 'info' } }));
  const result = loadConfig(['--config', path]);
  t.notOk(result.ok);
  if (result.ok) return;
  t.equal(result.errors.length, 5, result.message);
  for (const line of result.errors) t.ok(line.startsWith(`${path}: `), `names the file: ${line}`);
  t.ok(result.errors.includes(`${path}: workers.count: expected a positive integer or "auto", got "two"`));
  t.ok(result.errors.includes(`${path}: workers: unknown key "ap" (did you mean "app"?)`));
  t.ok(result.errors.includes(`${path}: unknown key "lisen" (did you mean "listen"?)`));
  t.ok(result.errors.includes(`${path}: log: unknown key "levle" (did you mean "level"?)`));
  t.ok(result.errors.includes(`${path}: admin.token: expected a token: admin.host "0.0.0.0" is not a loopback address`));
  t.equal(result.message, result.errors.join('\n'));
  const far = resolveConfig({ workers: { zzzzzz: 1 } }, {}, null);
  t.match(far, { ok: false, message: 'workers: unknown key "zzzzzz"' }, 'no suggestion when nothing is close');
});

t.test('admin.token: any address with a token; loopback without one', async (t) => {
  t.ok(resolveConfig({ admin: { host: '0.0.0.0', token: 'a-long-enough-token' } }, {}, null).ok);
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) t.ok(resolveConfig({ admin: { host } }, {}, null).ok, host);
  t.match(resolveConfig({ admin: { host: '::', token: 'short' } }, {}, null), { ok: false, message: /^admin\.token: expected a token of at least 16 characters/ });
});
