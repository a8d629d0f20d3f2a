import { execFile } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import type { ChaosSummary } from '../../bench/chaos.js';
import { ROOT } from '../helpers/balancer.js';

t.setTimeout(240_000);

t.test('the chaos soak, 60 s: every failure explained by a fault, no byte corrupted, the master back to its baseline after each phase', async (t) => {
  const output = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [join(ROOT, 'dist', 'bench', 'chaos.js'), '60', '15', '--json'], { timeout: 200_000, maxBuffer: 64 << 20 }, (error, stdout) => {
      // It exits 1 when something is unexplained; the summary says what.
      if (error && error.code !== 1) reject(error);
      else resolve(stdout);
    });
  });
  const summary = JSON.parse(output.trim().split('\n').at(-1) as string) as ChaosSummary;
  t.comment(output.split('\n').filter((line) => line.startsWith('|')).join('\n'));
  t.same(summary.unexplained, [], 'no failure without a fault that explains it');
  t.equal(summary.corrupted, 0, 'no corrupted byte');
  const injected = Object.values(summary.faults).reduce((a, b) => a + b, 0);
  t.ok(injected >= 8, `${injected} faults injected`);
  t.ok(summary.faults['kill -9'] + summary.faults['SIGSTOP/SIGCONT'] >= 1, 'workers were killed or stopped');
  t.ok(summary.checked.uploads > 0 && summary.checked.wsMessages > 0 && summary.checked.ioAcks > 0 && summary.checked.slowlorisClosed > 0, 'every kind of client checked bytes');
  t.ok(summary.phases.length >= 3, `${summary.phases.length} phases`);
  for (const [index, phase] of summary.phases.entries()) {
    t.ok(phase.fds <= summary.baseline.fds + summary.bounds.fds, `phase ${index + 1}: ${phase.fds} descriptors (baseline ${summary.baseline.fds})`);
    t.ok(phase.rssMB <= summary.baseline.rssMB * summary.bounds.rss, `phase ${index + 1}: ${phase.rssMB} MiB RSS (baseline ${summary.baseline.rssMB})`);
  }
});
