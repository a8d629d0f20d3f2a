import http from 'node:http';
import t, { type Test } from 'tap';
import { clientAddress, requestFrom, startExample, startHaproxyV2 } from '../helpers/examples.js';
import { nginxMissing, startNginx } from '../helpers/nginx.js';

t.setTimeout(240_000);

/**
 * `clients` clients, each from its own address: log in, then `later` requests
 * with the session cookie, half on fresh connections and half on one kept-alive
 * connection. Returns how many requests found no session (or another user's).
 */
async function sessionRun(port: number, clients: number, later: number): Promise<{ lost: number; requests: number; pids: Set<number> }> {
  let lost = 0;
  let requests = 0;
  const pids = new Set<number>();
  const client = async (i: number): Promise<void> => {
    const from = clientAddress(i);
    const user = `user-${i}`;
    const login = await requestFrom(port, from, 'POST', `/login?user=${user}`);
    requests++;
    if (login.status !== 200 || login.setCookie === null) {
      lost++;
      return;
    }
    pids.add(Number(login.body.pid));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let r = 0; r < later; r++) {
        const answer = await requestFrom(port, from, 'GET', '/me', { cookie: login.setCookie, agent: r % 2 === 0 ? false : agent });
        requests++;
        if (answer.status !== 200 || answer.body.user !== user || answer.body.pid !== login.body.pid) lost++;
      }
    } finally {
      agent.destroy();
    }
  };
  // Ten clients at a time: the proxies' pooled connections carry several clients at once.
  for (let at = 0; at < clients; at += 10) await Promise.all(Array.from({ length: Math.min(10, clients - at) }, (_, k) => client(at + k)));
  return { lost, requests, pids };
}

for (const [example, clients] of [
  ['express-session', 100],
  ['fastify-session', 50],
] as const) {
  t.test(`${example} with the default config: ${clients} clients log in and make 20 more requests, through nginx (keep-alive upstream, X-Forwarded-For)`, { skip: nginxMissing() ?? false }, async (t) => {
    const app = await startExample(t, example);
    const nginx = await startNginx(app.port, { location: 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;' });
    t.teardown(() => nginx.stop());
    const run = await sessionRun(nginx.port, clients, 20);
    t.equal(run.requests, clients * 21, `${run.requests} requests`);
    t.equal(run.lost, 0, 'no session lost');
    t.equal(run.pids.size, 2, 'sessions live on both workers');
  });

  t.test(`${example} with the default config: ${clients} clients through HAProxy (send-proxy-v2)`, async (t: Test) => {
    const app = await startExample(t, example);
    const haproxy = await startHaproxyV2(t, app.port);
    if (haproxy === null) return t.skip('haproxy is not installed (.ci/run installs it)');
    const run = await sessionRun(haproxy.port, clients, 20);
    t.equal(run.requests, clients * 21, `${run.requests} requests`);
    t.equal(run.lost, 0, 'no session lost');
    t.equal(run.pids.size, 2, 'sessions live on both workers');
  });
}
