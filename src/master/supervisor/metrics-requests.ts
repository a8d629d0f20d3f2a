/** One `GET /metrics` fan-out: the answers so far, the workers still to answer. */
interface Request<P> {
  readonly responses: unknown[][];
  readonly waiting: Set<P>;
  readonly done: () => void;
}

/**
 * The master asks each worker for its prom-client registry over IPC (our own
 * request, not prom-client's cluster listeners: the master owns the IPC
 * union) and waits for every answer, for a worker that can no longer answer,
 * or for the timeout, whichever comes first.
 */
export class MetricsRequests<P> {
  private readonly requests = new Map<number, Request<P>>();
  private nextId = 1;

  /** Sends a request with its id to each worker (`send` reports a failed send) and resolves with the answers. */
  constructor(private readonly send: (proc: P, id: number, failed: () => void) => void) {}

  ask(procs: readonly P[], timeoutMs: number): Promise<unknown[][]> {
    if (procs.length === 0) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const request: Request<P> = {
        responses: [],
        waiting: new Set(procs),
        done: () => {
          clearTimeout(timer);
          this.requests.delete(id);
          resolve(request.responses);
        },
      };
      const timer = setTimeout(request.done, timeoutMs);
      this.requests.set(id, request);
      for (const proc of procs) this.send(proc, id, () => this.settle(request, proc));
    });
  }

  /** A worker's answer to request `id`. */
  answered(id: number, proc: P, metrics: readonly unknown[]): void {
    const request = this.requests.get(id);
    if (!request || !request.waiting.has(proc)) return;
    request.responses.push([...metrics]);
    this.settle(request, proc);
  }

  /** A worker that can no longer answer: no request waits for it. */
  gone(proc: P): void {
    for (const request of [...this.requests.values()]) this.settle(request, proc);
  }

  private settle(request: Request<P>, proc: P): void {
    if (request.waiting.delete(proc) && request.waiting.size === 0) request.done();
  }
}
