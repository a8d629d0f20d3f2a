import pino from 'pino';
import t from 'tap';
import { assembleHooks, reuseModeInEffect, type WorkerAbilities } from '../../src/worker/hooks.js';
import { resolvedConfig as config, reuseContext as reuse } from '../helpers/worker.js';

const ABLE: WorkerAbilities = { log: pino({ level: 'silent' }), linkDir: '/tmp/sticky-links-test', socketReadsStop: true, responseRelay: true };


/** How many hooks of each kind a config installs. */
function counts(input: unknown, abilities: WorkerAbilities = ABLE) {
  const resolved = config(input);
  const hooks = assembleHooks(resolved, reuse(resolved), abilities);
  return { request: hooks.requestHooks.length, connection: hooks.connectionHooks.length, upgrade: hooks.upgradeHooks.length, links: hooks.linkPool !== null };
}

t.test('what each config installs in front of the app (an absent section adds nothing)', async (t) => {
  const table = [
    { name: 'key.reuse close', input: { key: { reuse: 'close' } }, want: { request: 1, connection: 0, upgrade: 0, links: false } },
    { name: 'key.reuse off, set explicitly (it counts what it misroutes)', input: { key: { reuse: 'off' } }, want: { request: 1, connection: 0, upgrade: 0, links: false } },
    { name: 'key.reuse handback', input: { key: { reuse: 'handback' } }, want: { request: 0, connection: 1, upgrade: 0, links: false } },
    { name: 'key.reuse forward (the default) with a link directory', input: {}, want: { request: 1, connection: 0, upgrade: 1, links: true } },
    { name: 'forward and the access log', input: { accessLog: true }, want: { request: 2, connection: 0, upgrade: 1, links: true } },
    { name: 'forward, the access log and requestsPerSecond', input: { accessLog: true, limits: { perClient: { requestsPerSecond: 5 } } }, want: { request: 3, connection: 0, upgrade: 1, links: true } },
    { name: 'handback and a sticky cookie', input: { key: { reuse: 'handback' }, stickyCookie: { name: 'lb', secret: 'a'.repeat(32) } }, want: { request: 1, connection: 1, upgrade: 0, links: false } },
  ];
  for (const row of table) t.same(counts(row.input), row.want, row.name);
});

t.test('"forward" goes first: the worker that serves a request inspects, logs and cookies it', async (t) => {
  const resolved = config({ accessLog: true });
  const first = assembleHooks(resolved, reuse(resolved), ABLE).requestHooks[0];
  const forwardOnly = config({});
  t.equal(first?.name, assembleHooks(forwardOnly, reuse(forwardOnly), ABLE).requestHooks[0]?.name, 'the same hook leads');
});

t.test('without the Node internals a mode needs, the next safe mode serves; forward without links hands back', async (t) => {
  t.equal(reuseModeInEffect('forward', { socketReadsStop: true, responseRelay: false }), 'handback');
  t.equal(reuseModeInEffect('forward', { socketReadsStop: false, responseRelay: true }), 'close');
  t.equal(reuseModeInEffect('handback', { socketReadsStop: false, responseRelay: true }), 'close');
  t.equal(reuseModeInEffect('close', { socketReadsStop: false, responseRelay: false }), 'close');
  t.same(counts({}, { ...ABLE, linkDir: null }), { request: 0, connection: 1, upgrade: 0, links: false }, 'no directory from the master: hand-back');
  t.same(counts({}, { ...ABLE, responseRelay: false }), { request: 0, connection: 1, upgrade: 0, links: false }, 'no relay on this Node: hand-back');
  t.same(counts({}, { ...ABLE, socketReadsStop: false }), { request: 1, connection: 0, upgrade: 0, links: false }, 'no stopped reads: close');
});
