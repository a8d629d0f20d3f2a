import type { Test } from 'tap';
import net from 'node:net';
import WebSocket from 'ws';
import { metricSum } from './admin.js';
import { admin, pollUntil, type RawResponse } from './balancer.js';
import { proxyV2For, requestVia, startFront, startNode, startNodes, type TestNode } from './nodes.js';

/** How a membership source is set up for the shared scenarios. */
export interface ClusterProvider {
  readonly name: string;
  /** `cluster.members` for the nodes `ids` with peer port `peerPort`. */
  members(ids: readonly string[], peerPort: number): unknown;
  /** What the platform does when a node dies (DNS: its record goes, as Kubernetes drops a dead pod). */
  onNodeGone?(id: string, ids: readonly string[]): Promise<void>;
  onNodeBack?(ids: readonly string[]): Promise<void>;
  /** Whether a dead node leaves the list (Redis, DNS) or stays in it as unreachable (a static list). */
  readonly leaves: boolean;
  /** How long after a kill -9 the survivors' views must have dropped it. */
  readonly leaveBoundMs: number;
}

interface DemoJson {
  pid: number;
  node: string;
  via: string | null;
  clientIp: string;
  key: string;
}

function json(response: RawResponse): DemoJson {
  if (response.status !== 200) throw new Error(`status ${response.status}: ${response.body.toString()}`);
  return JSON.parse(response.body.toString()) as DemoJson;
}

const KEYS = Array.from({ length: 100 }, (_, i) => `10.${20 + Math.floor(i / 50)}.${i % 50}.${7 + (i % 3)}`);

function pickOne<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T;
}

async function owners(node: TestNode, keys: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of keys) out.set(key, (JSON.parse((await admin(node.balancer.adminPort as number, `/owner?key=${encodeURIComponent(key)}`)).body.toString()) as { node: string }).node);
  return out;
}

async function clusterView(node: TestNode): Promise<Array<{ id: string; state: string }>> {
  return (JSON.parse((await admin(node.balancer.adminPort as number, '/cluster')).body.toString()) as { members: Array<{ id: string; state: string }> }).members;
}

/** Runs `task` over `items` with at most `width` at once. */
async function inBatches<T>(items: readonly T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await task(items[next++] as T);
    }),
  );
}

/** The many-node scenarios, the same for every membership source. */
export async function clusterScenarios(t: Test, provider: ClusterProvider): Promise<void> {
  const { nodes, peerPort } = await startNodes(3, (ids, port) => provider.members(ids, port), { workers: { count: 2 } });
  const ids = nodes.map((node) => node.id);
  const alive = new Set(nodes);
  t.teardown(async () => {
    for (const node of alive) await node.balancer.stop();
  });
  // Every node must see all three before the stickiness checks (Redis and DNS read asynchronously).
  await pollUntil(async () => ((await Promise.all(nodes.map(clusterView))).every((view) => view.filter((m) => m.state === 'ready').length === 3) ? true : undefined), 20_000);

  const ownerOf = await owners(nodes[0] as TestNode, KEYS);
  t.test('every node names the same owner for every key', async (t) => {
    for (const node of nodes.slice(1)) t.same([...(await owners(node, KEYS))], [...ownerOf], node.id);
    t.same(new Set(ownerOf.values()).size, 3, 'each node owns some of the 100 keys');
  });

  t.test('100 keys × 20 connections through random nodes: one worker per key, the real client, at most one hop', async (t) => {
    const answers = new Map<string, DemoJson[]>();
    const jobs = KEYS.flatMap((key) => Array.from({ length: 20 }, () => key));
    let badHops = 0;
    let wrongClient = 0;
    let wrongOwner = 0;
    await inBatches(jobs, 16, async (key) => {
      const entry = pickOne(nodes);
      const answer = json(await requestVia(entry, key));
      if (answer.clientIp !== key) wrongClient++;
      if (answer.node !== ownerOf.get(key)) wrongOwner++;
      // Zero hops: served where it entered; one hop: `via` names the entry node.
      if (answer.via !== (entry.id === answer.node ? null : entry.id)) badHops++;
      const list = answers.get(key) ?? [];
      list.push(answer);
      answers.set(key, list);
    });
    const split = [...answers].filter(([, list]) => new Set(list.map((a) => a.pid)).size !== 1).map(([key]) => key);
    t.same(split, [], 'every key answered by one pid');
    t.equal(wrongClient, 0, 'the app sees the synthetic client address');
    t.equal(wrongOwner, 0, 'served on the owner node');
    t.equal(badHops, 0, 'hops <= 1');
    t.equal([...answers.values()].reduce((sum, list) => sum + list.length, 0), 2000);
  });

  await t.test('kill -9 of one node under a request loop', async (t) => {
    const victim = nodes[1] as TestNode;
    const survivors = nodes.filter((node) => node !== victim);
    const pidBefore = new Map<string, number>();
    for (const key of KEYS) pidBefore.set(key, json(await requestVia(pickOne(survivors), key)).pid);
    let failuresOthers = 0;
    let movedOthers = 0;
    let served = 0;
    let stop = false;
    const loop = (async () => {
      // Bounded: at most 3000 requests.
      for (let i = 0; i < 3000 && !stop; i++) {
        const key = pickOne(KEYS);
        const theirs = ownerOf.get(key) === victim.id;
        try {
          const answer = json(await requestVia(pickOne(survivors), key));
          served++;
          if (!theirs && answer.pid !== pidBefore.get(key)) movedOthers++;
        } catch {
          if (!theirs) failuresOthers++;
        }
      }
    })();
    await pollUntil(() => (served > 50 ? true : undefined));
    victim.balancer.proc.kill('SIGKILL');
    alive.delete(victim);
    const killedAt = Date.now();
    await victim.balancer.exited;
    await provider.onNodeGone?.(victim.id, ids);
    // Its keys are what makes a static list notice; keep the loop going while the views change.
    await pollUntil(
      async () => {
        const views = await Promise.all(survivors.map(clusterView));
        return views.every((view) => (provider.leaves ? !view.some((m) => m.id === victim.id) : view.find((m) => m.id === victim.id)?.state !== 'ready')) ? true : undefined;
      },
      provider.leaveBoundMs + 5000,
      100,
    );
    const leftAfter = Date.now() - killedAt;
    t.ok(leftAfter <= provider.leaveBoundMs, `out of every survivor's view after ${leftAfter} ms (bound ${provider.leaveBoundMs} ms)`);
    stop = true;
    await loop;
    t.equal(failuresOthers, 0, "0 failed requests for the other nodes' keys");
    t.equal(movedOthers, 0, "the other nodes' keys stay on their workers");
    // Its keys now: served by their new owners, on one worker each.
    const newOwners = await owners(survivors[0] as TestNode, KEYS);
    let wrong = 0;
    for (const key of KEYS.filter((k) => ownerOf.get(k) === victim.id)) {
      const pids = new Set<number>();
      for (let i = 0; i < 3; i++) {
        const answer = json(await requestVia(pickOne(survivors), key));
        pids.add(answer.pid);
        if (answer.node !== newOwners.get(key) || answer.node === victim.id) wrong++;
      }
      if (pids.size !== 1) wrong++;
    }
    t.equal(wrong, 0, "the dead node's keys are served by their new owners, one worker each");
  });

  await t.test('the node comes back: its keys return to it', async (t) => {
    const victim = nodes[1] as TestNode;
    await provider.onNodeBack?.(ids);
    const back = await startNode(victim.host, victim.id, peerPort, provider.members(ids, peerPort), { workers: { count: 2 } });
    nodes[1] = back;
    alive.add(back);
    await pollUntil(async () => ((await Promise.all(nodes.map(clusterView))).every((view) => view.filter((m) => m.state === 'ready').length === 3) ? true : undefined), 20_000);
    // A static list: the survivors try it again when its unreachable mark runs out.
    const again = await pollUntil(async () => {
      const now = await owners(nodes[0] as TestNode, KEYS);
      return [...now].every(([key, owner]) => owner === ownerOf.get(key)) ? now : undefined;
    }, 15_000);
    t.equal(again.size, 100, 'every key has its first owner again');
    for (const key of KEYS.filter((k) => ownerOf.get(k) === back.id).slice(0, 10)) t.equal(json(await requestVia(pickOne(nodes), key)).node, back.id, key);
  });

  await t.test("SIGTERM of one node: nothing fails on the survivors, its own in-flight request completes", async (t) => {
    const leaving = nodes[2] as TestNode;
    const survivors = nodes.filter((node) => node !== leaving);
    const survivorKeys = KEYS.filter((key) => ownerOf.get(key) !== leaving.id);
    // WebSockets of clients whose connections enter and live on the survivors.
    const fronts: Array<{ close(): void }> = [];
    t.teardown(() => fronts.forEach((front) => front.close()));
    const sockets: WebSocket[] = [];
    let dropped = 0;
    for (const key of survivorKeys.slice(0, 10)) {
      const front = await startFront(() => survivors, key);
      fronts.push(front);
      const ws = new WebSocket(`ws://127.0.0.1:${front.port}/ws`);
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.on('close', () => dropped++);
      sockets.push(ws);
    }
    // A request in flight on the leaving node: its body arrives in two parts, the second after SIGTERM.
    const ownKey = KEYS.find((key) => ownerOf.get(key) === leaving.id) as string;
    const slowSocket = net.connect({ host: leaving.host, port: leaving.balancer.port });
    const slow = new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      slowSocket.on('data', (chunk: Buffer) => chunks.push(chunk));
      slowSocket.on('error', reject);
      slowSocket.on('close', () => resolve(Buffer.concat(chunks).toString()));
    });
    slowSocket.write(Buffer.concat([proxyV2For(ownKey, leaving), Buffer.from('POST /echo HTTP/1.1\r\nHost: app\r\nConnection: close\r\nContent-Length: 10\r\n\r\nfirst')]));
    // The head is read and the request is with a worker before the signal.
    await pollUntil(async () => ((await metricSum(leaving.balancer, 'sticky_handoffs_total')) > 0 ? true : undefined), 10_000);
    let failures = 0;
    let stop = false;
    const loop = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        try {
          json(await requestVia(pickOne(survivors), pickOne(survivorKeys)));
        } catch {
          failures++;
        }
      }
    })();
    leaving.balancer.proc.kill('SIGTERM');
    alive.delete(leaving);
    await pollUntil(() => (leaving.balancer.logs.some((line) => line.msg === 'stopping: no new connections, draining workers') ? true : undefined), 10_000);
    slowSocket.end('-half');
    const echoed = await slow;
    t.match(echoed, /^HTTP\/1\.1 200[\s\S]*\r\n\r\nfirst-half$/, 'its in-flight request completes');
    t.equal(await leaving.balancer.exited, 0, 'it exits 0');
    stop = true;
    await loop;
    t.equal(failures, 0, '0 failed requests on the survivors');
    // The WebSockets still answer.
    for (const ws of sockets) {
      const echo = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
      ws.send('still here');
      t.equal(await echo, 'still here');
    }
    t.equal(dropped, 0, '0 dropped WebSockets');
    for (const ws of sockets) ws.close();
  });
}
