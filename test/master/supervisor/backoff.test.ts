import t from 'tap';
import { respawnDelayMs } from '../../../src/master/supervisor/backoff.js';

t.test('crash-loop backoff: first respawn at once, then 100 ms doubling, capped at 10 s', async (t) => {
  const table = [
    { crashes: 1, delayMs: 0 },
    { crashes: 2, delayMs: 100 },
    { crashes: 3, delayMs: 200 },
    { crashes: 4, delayMs: 400 },
    { crashes: 8, delayMs: 6400 },
    { crashes: 9, delayMs: 10_000 },
    { crashes: 50, delayMs: 10_000 },
  ];
  for (const row of table) t.equal(respawnDelayMs(row.crashes), row.delayMs, `${row.crashes} crashes`);
});
