import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { resolveConfig } from '../src/shared/config/load.js';
import { ROOT } from './helpers/balancer.js';

const DEPLOY = join(ROOT, 'deploy');
const UNIT = join(DEPLOY, 'sticky-session-ts.service');

/** `Key=value` lines of a systemd unit (the last one wins, as systemd reads them). */
function unitSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) settings.set(match[1] as string, match[2] as string);
  }
  return settings;
}

t.test('the systemd unit passes systemd-analyze verify, and a broken copy does not', async (t) => {
  const verify = (path: string) => spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8', timeout: 60_000 });
  const ours = verify(UNIT);
  if (ours.error && (ours.error as NodeJS.ErrnoException).code === 'ENOENT') {
    if (process.env.CI) t.fail('systemd-analyze is missing in CI (.ci/run installs systemd)');
    else t.skip('systemd-analyze is not installed');
    return;
  }
  t.equal(ours.status, 0, ours.stderr);
  t.equal(ours.stderr, '', 'no warning either');
  const dir = mkdtempSync(join(tmpdir(), 'sticky-unit-'));
  const broken = join(dir, 'sticky-session-ts.service');
  writeFileSync(broken, readFileSync(UNIT, 'utf8').replace(/^ExecStart=\/usr\/bin\/node/m, 'ExecStart=/nonexistent/node'));
  t.not(verify(broken).status, 0, 'a unit whose command does not exist fails the same check');
});

t.test('the systemd unit: reload is SIGHUP, stop is SIGTERM with time for the drain, descriptors raised, config checked first', async (t) => {
  const settings = unitSettings(readFileSync(UNIT, 'utf8'));
  t.equal(settings.get('ExecReload'), '/bin/kill -HUP $MAINPID');
  t.equal(settings.get('KillSignal'), 'SIGTERM');
  const defaults = resolveConfig({}, {}, null);
  if (!defaults.ok) throw new Error(defaults.message);
  t.ok(Number(settings.get('TimeoutStopSec')) * 1000 > defaults.config.workers.drainTimeoutMs, 'TimeoutStopSec above the drain bound');
  t.ok(Number(settings.get('LimitNOFILE')) >= 65536);
  t.match(settings.get('ExecStartPre'), /dist\/master\.js --check /);
  t.match(settings.get('ExecStart'), /dist\/master\.js --config /);
});

/** A parsed Kubernetes manifest: read field by field, as the test walks it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- YAML of any shape, checked by the assertions
type Manifest = Record<string, any>;

function manifests(): Array<Manifest> {
  return ['configmap.yaml', 'deployment.yaml', 'service.yaml'].flatMap((name) =>
    parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', name), 'utf8')).map((document) => {
      if (document.errors.length > 0) throw new Error(`${name}: ${document.errors.map(String).join('; ')}`);
      return document.toJS() as Manifest;
    }),
  );
}

t.test('Kubernetes manifests: the config validates, probes ask the admin API, the stop waits for the drain, the NLB sends PROXY v2', async (t) => {
  const all = manifests();
  const byKind = new Map(all.map((m) => [m.kind as string, m]));
  t.same([...byKind.keys()].sort(), ['ConfigMap', 'Deployment', 'Service']);
  const configText = byKind.get('ConfigMap')?.data?.['config.json'] as string;
  const loaded = resolveConfig(JSON.parse(configText), {}, null);
  t.ok(loaded.ok, loaded.ok ? 'the ConfigMap config.json validates' : loaded.message);
  if (!loaded.ok) return;
  const config = loaded.config;
  t.equal(config.proxyProtocol.mode, 'required', 'behind the NLB every connection has a PROXY header');
  t.equal(config.health?.path, '/healthz');

  const pod = byKind.get('Deployment')?.spec?.template?.spec;
  const container = pod.containers[0];
  const adminPort = config.admin === false ? null : config.admin.port;
  for (const probe of ['readinessProbe', 'livenessProbe']) {
    t.match(container[probe].exec.command.join(' '), new RegExp(`127\\.0\\.0\\.1:${adminPort}/healthz`), `${probe} on the admin API`);
  }
  const preStop = Number(container.lifecycle.preStop.exec.command[1]);
  t.ok(pod.terminationGracePeriodSeconds * 1000 > preStop * 1000 + (config.health?.graceMs ?? 0) + config.workers.drainTimeoutMs, 'the grace period covers preStop, health.graceMs and the drain');
  t.equal(pod.securityContext.runAsNonRoot, true);
  t.equal(container.ports[0].containerPort, config.listen.port);
  t.equal(container.args.at(-1), '/etc/sticky-session-ts/config.json');
  t.equal(container.volumeMounts.find((mount: { name: string }) => mount.name === 'config').mountPath, '/etc/sticky-session-ts');

  const service = byKind.get('Service') as Manifest;
  const annotations = service.metadata.annotations as Record<string, string>;
  t.equal(annotations['service.beta.kubernetes.io/aws-load-balancer-proxy-protocol'], '*');
  t.equal(annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-path'], config.health?.path);
  t.equal(annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-port'], 'traffic-port');
  t.same(service.spec.selector, byKind.get('Deployment')?.spec.selector.matchLabels);
});

t.test('the Dockerfile: multi-stage on node:26-slim, a non-root user, signals through tini, a HEALTHCHECK', async (t) => {
  const lines = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'));
  const instructions = lines.map((line) => /^([A-Z]+)\s+(.*)$/.exec(line)).filter((match): match is RegExpExecArray => match !== null);
  const all = (name: string) => instructions.filter((match) => match[1] === name).map((match) => match[2] as string);
  t.same(all('FROM').map((from) => from.split(' ')[0]), ['node:26-slim', 'node:26-slim'], 'two stages');
  const users = all('USER');
  t.ok(users.length > 0 && users.at(-1) !== 'root', 'runs as a user other than root');
  t.match(all('ENTRYPOINT')[0], /^\["\/usr\/bin\/tini", "--"\]$/, 'tini passes signals on and reaps');
  t.match(all('CMD')[0], /^\["node", "dist\/master\.js"/, 'exec form: the master is tini\'s child, not a shell\'s');
  t.match(all('HEALTHCHECK')[0], /127\.0\.0\.1:9090\/healthz/);
  t.equal(all('STOPSIGNAL')[0], 'SIGTERM');
  // Every file the runtime stage copies from the build stage is one the build makes.
  for (const copy of all('COPY').filter((args) => args.startsWith('--from=build'))) t.match(copy.split(' ')[1], /^\/app\/(package\.json|node_modules|build\/Release\/fdpass\.node|dist)$/);
});
