/**
 * The answer to a health check on the traffic port (config `health`), written
 * by the master itself like HAProxy's monitor-uri: 200 while at least one
 * worker is ready, 503 while none is or the balancer is stopping.
 */

/** Whether a first request is the health check: GET or HEAD of exactly the path (a query string is allowed). */
export function isHealthCheck(method: string, target: string, path: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return target === path || (target.startsWith(path) && target.charCodeAt(path.length) === 0x3f /* ? */);
}

/** The whole response: `{"status":"ok","workers":N}`, or 503 with why. */
export function healthResponse(readyWorkers: number, stopping: boolean, forHead: boolean): Buffer {
  const ok = readyWorkers > 0 && !stopping;
  const body = JSON.stringify({ status: ok ? 'ok' : stopping ? 'stopping' : 'unavailable', workers: readyWorkers });
  const head =
    `HTTP/1.1 ${ok ? '200 OK' : '503 Service Unavailable'}\r\n` +
    'content-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'cache-control: no-store\r\n' +
    'connection: close\r\n\r\n';
  return Buffer.from(forHead ? head : head + body, 'latin1');
}
