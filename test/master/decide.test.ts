import pino from 'pino';
import t from 'tap';
import { MasterMetrics } from '../../src/master/admin/metrics.js';
import type { ClientConn } from '../../src/master/client-conn.js';
import { ClientLimits } from '../../src/master/client-limits.js';
import { Decider, type Peeked } from '../../src/master/decide.js';
import type { Refuser } from '../../src/master/refuse.js';
import type { Handoff } from '../../src/master/route.js';
import { signStickyCookie, nowSeconds } from '../../src/shared/key/sticky-cookie.js';
import { parseRequestHead, type RequestHead } from '../../src/shared/protocol/http1.js';
import type { ProxyHeader } from '../../src/shared/protocol/proxy.js';
import { hashKey } from '../../src/shared/ring/farmhash.js';
import { resolvedConfig } from '../helpers/worker.js';

const STICKY = { name: 'lb', secret: 'q'.repeat(32) };

/** A connection stand-in: records when the master stopped reading it. */
function conn(events: string[]): ClientConn {
  return {
    peer: '127.0.0.1',
    closed: false,
    read() {},
    stopReading: () => events.push('stopReading'),
    close() {},
    sendable: {},
    fd: 7,
    toSocket() {
      throw new Error('the refuser writes, not the decision');
    },
    endpoints: () => null,
  };
}

function head(lines: string[]): RequestHead {
  const parsed = parseRequestHead(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), 0, 16 * 1024);
  if (parsed.kind !== 'done') throw new Error(`not a head: ${parsed.kind}`);
  return parsed.value;
}

const get = (forwardedFor: string, ...more: string[]): RequestHead => head(['GET /app HTTP/1.1', 'Host: example.com', `X-Forwarded-For: ${forwardedFor}`, ...more]);

/** A Decider over `config` with a 2-slot pool (`ready`), its hand-offs and refusals recorded. */
function decider(input: Record<string, unknown>, ready = [1, 1]) {
  const config = resolvedConfig({ key: { order: ['forwarded', 'remote'] }, ...input });
  const metrics = new MasterMetrics();
  const events: string[] = [];
  const taken: Handoff[] = [];
  const refused: Array<{ code: string; client: string }> = [];
  const answered: string[] = [];
  const refuser = {
    refuse: (_conn: ClientConn, client: string, code: string) => refused.push({ code, client }),
    counted: (code: string, fields: { client: string }) => refused.push({ code, client: fields.client }),
    admit: () => 0,
    answerAndClose: (_conn: ClientConn, bytes: Buffer) => answered.push(bytes.toString('latin1')),
  } as unknown as Refuser;
  let stopping = false;
  const clientLimits = config.limits.perClient ? new ClientLimits(config.limits.perClient) : null;
  const pool = { slotCount: ready.length, readyMask: Uint8Array.from(ready), readyCount: () => ready.filter((r) => r === 1).length };
  const it = new Decider({
    config,
    pool,
    take: (handoff) => {
      events.push('take');
      taken.push(handoff);
    },
    refuser,
    metrics,
    log: pino({ level: 'silent' }),
    clientLimits,
    cluster: null,
    stopping: () => stopping,
  });
  const peeked = (options: { peer?: string; trusted?: boolean; proxy?: ProxyHeader | null } = {}): Peeked => ({
    conn: conn(events),
    peer: options.peer ?? '127.0.0.1',
    peerTrusted: options.trusted ?? true,
    proxy: options.proxy ?? null,
    fromPeer: false,
    acceptedAt: 1n,
    bytes: Buffer.from('GET /app HTTP/1.1\r\n'),
  });
  return { it, peeked, taken, refused, answered, events, metrics, clientLimits, stop: () => (stopping = true) };
}

t.test('the key: the trusted X-Forwarded-For client, else the peer; reading stops before the hand-off', async (t) => {
  const d = decider({});
  d.it.decide(d.peeked(), get('198.51.100.4'));
  d.it.decide(d.peeked({ peer: '203.0.113.9', trusted: false }), get('198.51.100.4'));
  d.it.decide(d.peeked(), null);
  t.same(
    d.taken.map((h) => [h.info.key, h.info.keySource, h.keyHash, h.peer]),
    [
      ['198.51.100.4', 'forwarded', hashKey('198.51.100.4'), '127.0.0.1'],
      ['203.0.113.9', 'remote', hashKey('203.0.113.9'), '203.0.113.9'],
      ['127.0.0.1', 'remote', hashKey('127.0.0.1'), '127.0.0.1'],
    ],
  );
  t.same(d.events, ['stopReading', 'take', 'stopReading', 'take', 'stopReading', 'take']);
  t.equal(d.taken[0]?.bytes.toString(), 'GET /app HTTP/1.1\r\n', 'the bytes read go with it');
  t.notOk('firstClient' in (d.taken[0]?.info ?? {}) || 'limitClient' in (d.taken[0]?.info ?? {}), 'no limits: nothing for them');
});

t.test('a PROXY source is the key, with its address in canonical form for the app', async (t) => {
  const d = decider({ key: { order: ['proxy', 'remote'] } });
  const proxy: ProxyHeader = { version: 1, command: 'PROXY', source: { address: '2001:DB8::1', port: 5000 }, destination: { address: '2001:db8::2', port: 80 }, tlvs: [] } as unknown as ProxyHeader;
  d.it.decide(d.peeked({ proxy }), null);
  t.equal(d.taken[0]?.info.key, '2001:db8::1');
  t.equal(d.taken[0]?.info.proxy?.source?.address, '2001:db8::1');
  t.equal(d.taken[0]?.info.proxy?.destination, proxy.destination, 'an address already canonical is kept as it is');
});

t.test('the health check is answered by the master, 503 once it is stopping or no worker is ready', async (t) => {
  const d = decider({ health: { path: '/healthz' } });
  d.it.decide(d.peeked(), head(['GET /healthz HTTP/1.1', 'Host: 10.0.0.1']));
  d.stop();
  d.it.decide(d.peeked(), head(['GET /healthz HTTP/1.1', 'Host: 10.0.0.1']));
  const none = decider({ health: { path: '/healthz' } }, [0, 0]);
  none.it.decide(none.peeked(), head(['GET /healthz HTTP/1.1', 'Host: 10.0.0.1']));
  t.match(d.answered[0], /^HTTP\/1\.1 200 /);
  t.match(d.answered[1], /^HTTP\/1\.1 503 /);
  t.match(none.answered[0], /^HTTP\/1\.1 503 /);
  t.same([d.taken.length, none.taken.length], [0, 0]);
});

t.test('inspection refuses a first request before any key or limit', async (t) => {
  const d = decider({ inspect: { paths: { deny: ['\\.php$'] } }, limits: { perClient: { maxConnections: 1 } } });
  d.it.decide(d.peeked(), head(['GET /wp-login.php HTTP/1.1', 'Host: example.com', 'X-Forwarded-For: 198.51.100.5']));
  t.match(d.answered[0], /^HTTP\/1\.1 40\d /);
  t.equal(d.taken.length, 0);
  t.equal(d.clientLimits?.openOf('198.51.100.5'), 0, 'not counted against the client');
  t.same((await d.metrics.rejectedRequests.get()).values.map((v) => [v.labels.where, v.value]), [['master', 1]]);
  d.it.decide(d.peeked(), get('198.51.100.5'));
  t.equal(d.taken.length, 1, 'a request the rules allow goes on');
});

t.test('a valid sticky cookie for a ready slot pins it; one for a slot not ready, or forged, does not', async (t) => {
  const d = decider({ stickyCookie: STICKY }, [1, 0]);
  const rules = resolvedConfig({ stickyCookie: STICKY }).stickyCookie!;
  const now = nowSeconds();
  d.it.decide(d.peeked(), get('198.51.100.6', `Cookie: lb=${signStickyCookie(0, now, rules)}`));
  d.it.decide(d.peeked(), get('198.51.100.6', `Cookie: lb=${signStickyCookie(1, now, rules)}`));
  d.it.decide(d.peeked(), get('198.51.100.6', 'Cookie: lb=0.1.AAAAAAAAAAAAAAAAAAAAAA'));
  t.same(
    d.taken.map((h) => [h.pinned, h.info.keySource]),
    [
      [0, 'sticky'],
      [undefined, 'forwarded'],
      [undefined, 'forwarded'],
    ],
  );
  t.same((await d.metrics.stickyCookieRejected.get()).values.map((v) => v.value), [1], 'the forged one is counted');
});

t.test('limits.perClient: counted under the real client, refused over the limit, exempt never limited', async (t) => {
  const d = decider({ limits: { perClient: { maxConnections: 1, requestsPerSecond: 100, exempt: ['192.0.2.0/24'] } } });
  d.it.decide(d.peeked(), get('198.51.100.7'));
  d.it.decide(d.peeked(), get('198.51.100.7'));
  d.it.decide(d.peeked(), get('192.0.2.1'));
  d.it.decide(d.peeked(), get('192.0.2.1'));
  t.equal(d.taken.length, 3);
  t.same([d.taken[0]?.limitClient, d.taken[0]?.info.limitClient, d.taken[0]?.info.firstClient], ['198.51.100.7', '198.51.100.7', '198.51.100.7']);
  t.same(d.refused, [{ code: 'ERR_CLIENT_CONNECTIONS', client: '198.51.100.7' }], 'the second connection of a client at maxConnections 1');
  t.same([d.taken[1]?.limitClient, d.taken[2]?.limitClient], [undefined, undefined], 'the exempt client is neither counted nor limited');

  const keyIsNotClient = decider({ key: { order: ['cookie', 'remote'], cookie: 'sid' }, limits: { perClient: { maxConnections: 5 } } });
  keyIsNotClient.it.decide(keyIsNotClient.peeked(), get('198.51.100.8', 'Cookie: sid=abc'));
  t.same([keyIsNotClient.taken[0]?.info.key, keyIsNotClient.taken[0]?.limitClient], ['abc', '198.51.100.8'], 'a cookie key: counted under the X-Forwarded-For client');
  t.notOk('firstClient' in (keyIsNotClient.taken[0]?.info ?? {}), 'no requestsPerSecond: the worker needs no first client');
});

t.test('respond429: a refused connection whose head was read gets a 429 with Retry-After', async (t) => {
  const d = decider({ limits: { perClient: { connectionsPerSecond: 1, connectionBurst: 1, respond429: true } } });
  d.it.decide(d.peeked(), get('198.51.100.9'));
  d.it.decide(d.peeked(), get('198.51.100.9'));
  d.it.decide(d.peeked({ peer: '198.51.100.9', trusted: false }), null);
  t.equal(d.taken.length, 1);
  t.match(d.answered[0], /^HTTP\/1\.1 429 Too Many Requests\r\n(?:.*\r\n)*retry-after: \d+\r\n/i);
  t.same(d.refused, [
    { code: 'ERR_CLIENT_RATE', client: '198.51.100.9' },
    { code: 'ERR_CLIENT_RATE', client: '198.51.100.9' },
  ], 'no head read: closed without a byte');
  t.equal(d.answered.length, 1);
});
