import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';
import { ROOT } from './helpers/balancer.js';

/**
 * The layout as the README's "Architecture" section draws it, checked against
 * the import graph of src/: which folder may import which, no circle, and every
 * module named in the section (ESLint enforces the same boundaries file by
 * file; this sees the whole graph).
 */

const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module of src/ (as src/…/x.ts) and the src/ modules it imports, statically or lazily. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets: string[] = [];
    for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|require\(\s*)'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), (match[1] as string).replace(/\.js$/, '.ts'));
      if (target.startsWith(SRC)) targets.push(relative(ROOT, target));
    }
    graph.set(relative(ROOT, file), targets);
  }
  return graph;
}

/** The top folder of a module under src/: master, worker, shared, node, or '' for src/index.ts. */
const side = (module: string): string => (module.split('/').length > 2 ? (module.split('/')[1] as string) : '');

const graph = importGraph();

t.test('the graph names only modules that exist', async (t) => {
  for (const [module, targets] of graph) for (const target of targets) t.ok(graph.has(target), `${module} imports ${target}`);
});

t.test('master never imports worker code and the reverse; shared and node import neither', async (t) => {
  const allowed: Record<string, readonly string[]> = {
    master: ['master', 'shared', 'node'],
    worker: ['worker', 'shared', 'node'],
    shared: ['shared', 'node'],
    node: ['node'],
    '': ['master', 'shared', 'node'],
  };
  let crossings = 0;
  for (const [module, targets] of graph) {
    for (const target of targets) {
      if ((allowed[side(module)] ?? []).includes(side(target))) continue;
      crossings++;
      t.fail(`${module} imports ${target}`);
    }
  }
  t.equal(crossings, 0, 'no import crosses a boundary');
});

t.test('no import circle', async (t) => {
  // Depth-first search with colours: an edge to a module still on the stack closes a circle.
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (module: string, stack: string[]): void => {
    state.set(module, 'open');
    stack.push(module);
    for (const target of graph.get(module) ?? []) {
      if (state.get(target) === 'open') circles.push([...stack.slice(stack.indexOf(target)), target].join(' → '));
      else if (!state.has(target)) visit(target, stack);
    }
    stack.pop();
    state.set(module, 'done');
  };
  for (const module of graph.keys()) if (!state.has(module)) visit(module, []);
  t.same(circles, [], 'every module can be read without first reading one that needs it');
});

t.test("the README's Architecture section names every module of src/, and only those", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Architecture');
  t.ok(start !== -1, 'the README has an Architecture section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const named = new Set([...section.matchAll(/`(src\/[\w/.-]+\.ts)`/g)].map((match) => match[1] as string));
  for (const module of graph.keys()) t.ok(named.has(module), `${module} is in the map`);
  for (const module of named) t.ok(graph.has(module), `${module} (in the map) exists`);
});
