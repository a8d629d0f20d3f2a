import { request } from './balancer.js';
import { parseExposition, sumOf } from './prometheus.js';

/** One entry of `GET /workers`. */
export interface WorkerEntry {
  slot: number;
  pid: number | null;
  state: string;
  connections: number;
}

/** `GET /workers` on the admin port. */
export async function getWorkers(adminPort: number): Promise<WorkerEntry[]> {
  const answer = await request(adminPort, { path: '/workers' });
  if (answer.status !== 200) throw new Error(`GET /workers: ${answer.status}`);
  return JSON.parse(answer.body.toString()) as WorkerEntry[];
}

/** `PUT /workers {"count": N}`; resolves with the status and the list. */
export async function putWorkers(adminPort: number, count: unknown): Promise<{ status: number; body: unknown }> {
  const answer = await request(adminPort, {
    method: 'PUT',
    path: '/workers',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ count }),
  });
  return { status: answer.status, body: JSON.parse(answer.body.toString()) as unknown };
}

/** `GET /metrics` as text. */
export async function getMetricsText(adminPort: number): Promise<string> {
  const answer = await request(adminPort, { path: '/metrics' });
  if (answer.status !== 200) throw new Error(`GET /metrics: ${answer.status}`);
  return answer.body.toString();
}

/** True when every slot `0..count-1` is ready and there are exactly `count`. */
export function allReady(workers: readonly WorkerEntry[], count: number): boolean {
  return workers.length === count && workers.every((worker) => worker.state === 'ready' && worker.pid !== null);
}

/** pid of each slot, from the admin API. */
export async function pidsBySlot(balancer: { readonly adminPort: number | null }): Promise<Map<number, number>> {
  const workers = await getWorkers(balancer.adminPort as number);
  return new Map(workers.map((worker) => [worker.slot, worker.pid as number]));
}

/** The sum of one family's samples whose labels include `labels`, from `GET /metrics` (the master's and the workers'). */
export async function metricSum(balancer: { readonly adminPort: number | null }, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sumOf(parseExposition(await getMetricsText(balancer.adminPort as number)), name, labels);
}
