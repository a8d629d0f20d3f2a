import http from 'node:http';
import t from 'tap';
import { getWorkers, metricSum } from '../helpers/admin.js';
import { startBalancer, type RunningBalancer } from '../helpers/balancer.js';
import { nginxMissing, startNginx } from '../helpers/nginx.js';
import { preference } from '../helpers/pool.js';

t.setTimeout(240_000);

const missing = nginxMissing();
if (missing !== null) {
  t.skip(`nginx interop: ${missing}`);
} else {
  /**
   * nginx as an HTTP reverse proxy with upstream keep-alive, adding its peer to
   * X-Forwarded-For. The test clients all connect from 127.0.0.1 and play
   * clients behind one more proxy: each sends its own X-Forwarded-For, nginx
   * appends 127.0.0.1, so the client is the second entry from the right
   * (forwardedTrustedHops 2). README "Reused connections" has the deployment
   * variants (hops 1 when nginx faces the clients; real_ip_header otherwise).
   */
  const NGINX_LOCATION = 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;';
  const CLIENTS = 20;
  const REQUESTS_PER_CLIENT = 10;

  interface Outcome {
    /** Client address → pids that answered it. */
    readonly pids: Map<string, Set<number>>;
    /** Responses not from the key's first-choice worker. */
    readonly wrong: number;
    readonly keysSeen: Set<string>;
  }

  async function runClients(balancer: RunningBalancer, nginxPort: number): Promise<Outcome> {
    const workers = await getWorkers(balancer.adminPort as number);
    const pidOf = new Map(workers.map((worker) => [worker.slot, worker.pid as number]));
    const pids = new Map<string, Set<number>>();
    const keysSeen = new Set<string>();
    let wrong = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, index) => {
        const address = `10.1.0.${index + 1}`;
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const seen = new Set<number>();
        pids.set(address, seen);
        try {
          for (let i = 0; i < REQUESTS_PER_CLIENT; i++) {
            const answer = await get(nginxPort, agent, { 'x-forwarded-for': address });
            seen.add(answer.pid);
            keysSeen.add(answer.key);
            if (answer.pid !== pidOf.get(preference(address, workers.length)[0] as number)) wrong++;
          }
        } finally {
          agent.destroy();
        }
      }),
    );
    return { pids, wrong, keysSeen };
  }

  function get(port: number, agent: http.Agent, headers: Record<string, string>): Promise<{ pid: number; key: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/', agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}: ${Buffer.concat(chunks).toString()}`));
          else resolve(JSON.parse(Buffer.concat(chunks).toString()) as { pid: number; key: string });
        });
      });
      req.on('error', reject);
      req.end();
    });
  }


  for (const mode of ['handback', 'forward', 'close'] as const) {
    t.test(`through nginx with upstream keep-alive, key.reuse ${mode}: 20 clients each always reach their worker`, async (t) => {
      const balancer = await startBalancer({ key: { reuse: mode, forwardedTrustedHops: 2 } });
      t.teardown(() => balancer.stop());
      const nginx = await startNginx(balancer.port, { location: NGINX_LOCATION });
      t.teardown(() => nginx.stop());
      const outcome = await runClients(balancer, nginx.port);
      for (const [address, seen] of outcome.pids) t.equal(seen.size, 1, `${address} always reached one worker`);
      t.equal(outcome.wrong, 0, "every response came from the client's key's worker");
      t.same([...outcome.keysSeen].sort(), Array.from({ length: CLIENTS }, (_, i) => `10.1.0.${i + 1}`).sort(), 'the app saw each client address as its key');
      t.equal(await metricSum(balancer, 'sticky_worker_requests_off_worker_total'), 0, 'no request served off its worker');
      if (mode === 'handback') t.ok((await metricSum(balancer, 'sticky_handbacks_total')) > 0, 'nginx reused connections across clients, and they were handed back');
      if (mode === 'forward') t.ok((await metricSum(balancer, 'sticky_worker_forwarded_requests_total')) > 0, 'nginx reused connections across clients, and their requests were relayed');
    });
  }

  t.test('control: key.reuse off through the same nginx misroutes (the setup really pools connections)', async (t) => {
    const balancer = await startBalancer({ key: { reuse: 'off', forwardedTrustedHops: 2 } });
    t.teardown(() => balancer.stop());
    const nginx = await startNginx(balancer.port, { location: NGINX_LOCATION });
    t.teardown(() => nginx.stop());
    const outcome = await runClients(balancer, nginx.port);
    t.ok(outcome.wrong > 0, `with reuse off, ${outcome.wrong} of ${CLIENTS * REQUESTS_PER_CLIENT} responses came from another worker`);
    t.ok((await metricSum(balancer, 'sticky_worker_requests_off_worker_total')) > 0, 'and "off" counts them');
  });
}
