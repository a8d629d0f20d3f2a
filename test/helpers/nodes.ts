import net from 'node:net';
import { encodeProxyV2 } from '../../src/shared/protocol/proxy.js';
import { parseResponse, startBalancer, type RawResponse, type RunningBalancer } from './balancer.js';
import { freePortOn } from './peers.js';

/** One balancer node of a test cluster: a master on its own loopback address. */
export interface TestNode {
  readonly id: string;
  readonly host: string;
  readonly balancer: RunningBalancer;
}

/** The loopback addresses the nodes bind (one per node). */
export const NODE_HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

/**
 * Starts `count` nodes on 127.0.0.2, .3, ... with one peer port number on all;
 * `members(ids, peerPort)` is the `cluster.members` each gets.
 */
export async function startNodes(
  count: number,
  members: (ids: readonly string[], peerPort: number) => unknown,
  overrides: Record<string, unknown> = {},
  peerPort?: number,
  env: NodeJS.ProcessEnv = {},
): Promise<{ nodes: TestNode[]; peerPort: number }> {
  const hosts = NODE_HOSTS.slice(0, count);
  const port = peerPort ?? (await freePortOn(NODE_HOSTS));
  const ids = hosts.map((host) => `${host}:${port}`);
  const nodes = await Promise.all(hosts.map((host, index) => startNode(host, ids[index] as string, port, members(ids, port), overrides, env)));
  return { nodes, peerPort: port };
}

/** Starts one node. */
export async function startNode(
  host: string,
  id: string,
  peerPort: number,
  members: unknown,
  overrides: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<TestNode> {
  const balancer = await startBalancer(
    {
      listen: { host, port: 0 },
      cluster: { self: id, peer: { host, port: peerPort, trustedFrom: ['127.0.0.0/8'] }, members },
      ...overrides,
    },
    [],
    env,
  );
  return { id, host, balancer };
}

/** The PROXY v2 header a front (an NLB) writes for a synthetic client. */
export function proxyV2For(client: string, node: TestNode): Buffer {
  return encodeProxyV2({
    family: client.includes(':') ? 'TCP6' : 'TCP4',
    source: { address: client, port: 1024 + Math.floor(Math.random() * 60_000) },
    destination: { address: client.includes(':') ? '::1' : node.host, port: node.balancer.port },
  });
}

/** One request on a fresh connection to `node`, with a PROXY v2 header for `client`; the whole response. */
export function requestVia(node: TestNode, client: string, path = '/', extraHead = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: node.host, port: node.balancer.port, noDelay: true });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => {
      const response = parseResponse(Buffer.concat(chunks));
      if (response === null) reject(new Error(`no complete response from ${node.id} (${Buffer.concat(chunks).length} bytes)`));
      else resolve(response);
    });
    socket.write(Buffer.concat([proxyV2For(client, node), Buffer.from(`GET ${path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n${extraHead}\r\n`)]));
  });
}

/**
 * A front like an NLB: a loopback listener that sends each connection to a
 * random node of `pick()` with a PROXY v2 header for one synthetic client.
 */
export async function startFront(pick: () => readonly TestNode[], client: string): Promise<{ port: number; close(): void }> {
  const server = net.createServer((socket) => {
    const candidates = pick();
    const node = candidates[Math.floor(Math.random() * candidates.length)] as TestNode;
    const upstream = net.connect({ host: node.host, port: node.balancer.port, noDelay: true });
    upstream.write(proxyV2For(client, node));
    socket.pipe(upstream);
    upstream.pipe(socket);
    const close = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', close);
    upstream.on('error', close);
    socket.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}
