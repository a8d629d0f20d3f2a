import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from '../../helpers/balancer.js';

/** Both sides of an upgrade in one fixture (the old master starts the same script as its successor). */
const PAIR = join(ROOT, 'test', 'fixtures', 'upgrade-pair.js');

/** Runs the old side; resolves with the JSON lines both sides printed. */
function runPair(env: NodeJS.ProcessEnv = {}): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [PAIR], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => (out += chunk));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.once('error', reject);
    // The successor inherits stdout: wait until it has closed its end too.
    proc.stdout.once('close', () => {
      clearTimeout(timer);
      resolve(
        out
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>),
      );
    });
  });
}

t.test('the successor takes every listening socket, says it is ready, and the old master learns its pid', async (t) => {
  const lines = await runPair();
  const fresh = lines.find((line) => line.side === 'new');
  const old = lines.find((line) => line.side === 'old');
  t.same(fresh?.names, ['listen', 'admin', 'peer'], 'traffic, admin and peer sockets, in that order');
  t.equal(fresh?.variable, null, 'the upgrade variable is not passed on to its workers');
  t.type(old?.successor, 'number', "the old master has the new one's pid");
  t.ok((old?.successor as number) > 0);
});

t.test('a successor that exits before it is ready: the old master keeps serving (null)', async (t) => {
  const lines = await runPair({ UPGRADE_PAIR_SUCCESSOR: 'die' });
  t.equal(lines.length, 1, 'only the old master printed');
  t.match(lines[0], { side: 'old', successor: null });
});
