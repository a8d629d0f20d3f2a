import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ERROR_CODES } from '../src/shared/errors.js';
import { ROOT, startBalancer, which } from './helpers/balancer.js';

/** The README's curl session: each `$ curl …` line with the JSON answer printed under it. */
function curlSession(): Array<{ args: string[]; answer: Record<string, unknown> }> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Stickiness in one curl session'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const lines = block.split('\n');
  const pairs: Array<{ args: string[]; answer: Record<string, unknown> }> = [];
  for (let i = 0; i < lines.length - 1; i++) {
    const line = lines[i] as string;
    if (!line.startsWith('$ curl ')) continue;
    // The README's quoting is plain single quotes around whole arguments.
    const args = [...line.slice('$ curl '.length).matchAll(/'([^']*)'|(\S+)/g)].map((match) => match[1] ?? (match[2] as string));
    pairs.push({ args, answer: JSON.parse(lines[i + 1] as string) as Record<string, unknown> });
  }
  return pairs;
}

t.test("the README's curl session gives the same workers and keys on a real run of the default config", { skip: which('curl') === null ? 'curl is not installed' : false }, async (t) => {
  const session = curlSession();
  t.ok(session.length >= 5, `${session.length} commands in the README`);
  // The default config, as `node dist/master.js` reads it from the repository's config.json (on a free port).
  const config = JSON.parse(readFileSync(join(ROOT, 'config.json'), 'utf8')) as Record<string, unknown>;
  const balancer = await startBalancer({ ...config, listen: { host: '127.0.0.1', port: 0 }, admin: false, workers: { ...(config.workers as object), app: join(ROOT, 'dist', 'workers', 'demo-app.js') } });
  t.teardown(() => balancer.stop());
  for (const { args, answer } of session) {
    const real = JSON.parse(execFileSync('curl', args.map((arg) => arg.replace('localhost:8080', `127.0.0.1:${balancer.port}`)), { encoding: 'utf8' })) as Record<string, unknown>;
    for (const field of ['worker', 'key', 'keySource', 'clientIp', 'xff']) t.equal(real[field], answer[field], `curl ${args.join(' ')}: ${field}`);
  }
});

/** The output the README shows under `$ <command>` in a plain code block. */
function shownOutput(command: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n$ ${command}\n`);
  if (start === -1) throw new Error(`the README does not show \`${command}\``);
  const from = start + command.length + 4;
  return readme.slice(from, readme.indexOf('```', from));
}

t.test("the README shows the real output of --help and --check on the repository's config.json", async (t) => {
  const run = (args: string[]) => execFileSync(process.execPath, [join(ROOT, 'dist', 'master.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  t.equal(shownOutput('node dist/master.js --help'), run(['--help']));
  t.equal(shownOutput('node dist/master.js --check'), run(['--check']));
});

t.test("the README's Error codes table is the catalogue, code for code and meaning for meaning", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Error codes');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const rows = [...section.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \| (.+) \|$/gm)].map((match) => [match[1], (match[2] as string).replace(/\\\|/g, '|')]);
  t.same(rows, Object.entries(ERROR_CODES), 'every code, in catalogue order, with its meaning');
});
