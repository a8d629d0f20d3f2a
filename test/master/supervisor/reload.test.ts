import t from 'tap';
import { resolveConfig, type ResolvedConfig } from '../../../src/shared/config/load.js';
import { restartOnlyChanges } from '../../../src/master/supervisor/reload.js';

function config(input: Record<string, unknown>): ResolvedConfig {
  const result = resolveConfig(input, {}, null);
  if (!result.ok) throw new Error(result.message);
  return result.config;
}

t.test('what a SIGHUP can apply and what needs a master restart', async (t) => {
  const base = { workers: { count: 2 }, limits: { peekTimeoutMs: 5000 } };
  const table: Array<{ name: string; next: Record<string, unknown>; paths: string[] }> = [
    { name: 'nothing changed', next: base, paths: [] },
    { name: 'worker-side changes apply', next: { ...base, workers: { count: 3, app: './other.js' }, log: { level: 'debug' }, limits: { peekTimeoutMs: 5000, headersTimeoutMs: 1000 } }, paths: [] },
    { name: 'listen port', next: { ...base, listen: { port: 9999 } }, paths: ['listen'] },
    { name: 'admin off', next: { ...base, admin: false }, paths: ['admin'] },
    { name: 'key order', next: { ...base, key: { order: ['remote'] } }, paths: ['key'] },
    { name: 'master peek timeout', next: { ...base, limits: { peekTimeoutMs: 100 } }, paths: ['limits.peekTimeoutMs'] },
    { name: 'proxy mode and inspect', next: { ...base, proxyProtocol: { mode: 'off' }, inspect: { methods: ['GET'] } }, paths: ['proxyProtocol', 'inspect'] },
  ];
  for (const row of table) t.same(restartOnlyChanges(config(base), config(row.next)), row.paths, row.name);
});
