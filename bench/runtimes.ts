/**
 * Ours and Node's cluster round-robin on several Node binaries, interleaved:
 * every round runs bench/compare.ts once per binary (one round, ours and
 * cluster-rr, every load shape), rotating the order, so that the same machine
 * state hits each runtime alike. Prints, per runtime, the medians over rounds
 * of ours' rates and of its per-round ratios to cluster-rr on the same Node.
 *
 *   npm run build
 *   node dist/bench/runtimes.js --node ~/.cache/sticky-session-ts/node/22/package/bin/node \
 *     --node ~/.cache/sticky-session-ts/node/26/package/bin/node --rounds 5 --duration 5
 *
 * With `--repo DIR` (repeatable) the same is done for several builds of the
 * balancer (another checkout, built), e.g. before and after a change:
 *
 *   git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)
 *   node dist/bench/runtimes.js --repo /tmp/before --repo . --rounds 3 --duration 5
 *
 * Writes bench/results/runtimes-<time>.json. Bounded: rounds × binaries runs of compare.ts,
 * each bounded itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO } from './apps/contenders.js';

type Mode = 'close' | 'keepalive' | 'client';
const MODES: readonly Mode[] = ['close', 'keepalive', 'client'];

interface Options {
  readonly nodes: readonly string[];
  /** Checkouts whose dist/ is measured (this one by default). */
  readonly repos: readonly string[];
  readonly rounds: number;
  readonly durationS: number;
}

function parseOptions(argv: readonly string[]): Options {
  const nodes: string[] = [];
  const repos: string[] = [];
  let rounds = 3;
  let durationS = 5;
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1] ?? '';
    if (argv[i] === '--node') nodes.push(value);
    else if (argv[i] === '--repo') repos.push(resolve(value));
    else if (argv[i] === '--rounds') rounds = Number(value);
    else if (argv[i] === '--duration') durationS = Number(value);
    else continue;
    i++;
  }
  if (nodes.length === 0) nodes.push(process.execPath);
  if (repos.length === 0) repos.push(REPO);
  if (!(rounds >= 1 && durationS >= 1)) throw new Error('--rounds and --duration must be at least 1');
  return { nodes, repos, rounds, durationS };
}

/** One compare.ts run: what it measured for ours, per mode (rate, ratio to cluster-rr, latency). */
interface Run {
  readonly node: string;
  readonly repo: string;
  readonly version: string;
  readonly round: number;
  readonly modes: Record<Mode, { readonly rps: number; readonly ratio: number; readonly p50Us: number; readonly p99Us: number; readonly rrRps: number }>;
}

interface CompareJson {
  readonly node: string;
  readonly rows: Array<{ readonly name: string } & Record<Mode, { readonly median: number; readonly ratio: number }>>;
  readonly entries: Array<{ readonly contender: string; readonly mode: Mode; readonly wrk: { readonly p50Us: number; readonly p99Us: number } }>;
}

function runCompare(node: string, repo: string, durationS: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [join(repo, 'dist', 'bench', 'compare.js'), '--rounds', '1', '--duration', String(durationS), '--only', 'ours,cluster-rr'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      const written = /^written (.+\.json)$/m.exec(out)?.[1];
      if (code === 0 && written !== undefined) resolve(written);
      else reject(new Error(`compare.ts of ${repo} under ${node} exited ${code}`));
    });
  });
}

function toRun(node: string, repo: string, round: number, json: CompareJson): Run {
  const ours = json.rows.find((row) => row.name === 'ours');
  const rr = json.rows.find((row) => row.name === 'cluster-rr');
  if (ours === undefined || rr === undefined) throw new Error('compare.ts measured no ours or cluster-rr');
  const modes = {} as Run['modes'];
  for (const mode of MODES) {
    const entry = json.entries.find((e) => e.contender === 'ours' && e.mode === mode);
    modes[mode] = { rps: ours[mode].median, ratio: ours[mode].ratio, p50Us: entry?.wrk.p50Us ?? 0, p99Us: entry?.wrk.p99Us ?? 0, rrRps: rr[mode].median };
  }
  return { node, repo, version: json.node, round, modes };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function table(runs: readonly Run[], options: Options): string {
  const lines = [
    `${new Date().toISOString()} · ${options.rounds} interleaved rounds × ${options.durationS} s per measurement · ours and cluster-rr on each Node · medians over rounds`,
    '',
    '| Node | build | new conn/s | × cluster-rr | p50 / p99 ms | keep-alive, one client per connection × rr | keep-alive, random client per request × rr | cluster-rr new conn/s |',
    '|---|---|---:|---:|---|---:|---:|---:|',
  ];
  for (const { node, repo } of contenders(options)) {
    const mine = runs.filter((run) => run.node === node && run.repo === repo);
    if (mine.length === 0) continue;
    const m = (mode: Mode, field: 'rps' | 'ratio' | 'p50Us' | 'p99Us' | 'rrRps'): number => median(mine.map((run) => run.modes[mode][field]));
    lines.push(
      `| ${mine[0]?.version} | ${buildName(repo)} | ${m('close', 'rps').toFixed(0)} | **${m('close', 'ratio').toFixed(2)}** | ${(m('close', 'p50Us') / 1000).toFixed(2)} / ${(m('close', 'p99Us') / 1000).toFixed(1)} | **${m('client', 'ratio').toFixed(2)}** | **${m('keepalive', 'ratio').toFixed(2)}** | ${m('close', 'rrRps').toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}

/** Every Node binary with every build. */
function contenders(options: Options): Array<{ readonly node: string; readonly repo: string }> {
  return options.nodes.flatMap((node) => options.repos.map((repo) => ({ node, repo })));
}

/** A build by its commit (and whether its tree has changes), or its directory. */
function buildName(repo: string): string {
  try {
    const commit = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return `${commit}${dirty ? '+' : ''}`;
  } catch {
    return repo;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const all = contenders(options);
  const runs: Run[] = [];
  for (let round = 0; round < options.rounds; round++) {
    // Rotate the order: no contender always goes first on a cold machine.
    const order = all.map((_, i) => all[(i + round) % all.length] as (typeof all)[number]);
    for (const { node, repo } of order) {
      process.stderr.write(`round ${round + 1}/${options.rounds}: ${node} ${repo}\n`);
      const path = await runCompare(node, repo, options.durationS);
      runs.push(toRun(node, repo, round, JSON.parse(readFileSync(path, 'utf8')) as CompareJson));
    }
  }
  const text = table(runs, options);
  console.log(text);
  const dir = join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `runtimes-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ options, runs }, null, 2));
  console.log(`written ${file}`);
}

main().catch((error: unknown) => {
  console.error((error as Error).message);
  process.exit(1);
});
