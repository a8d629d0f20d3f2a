import type { z } from 'zod';

/**
 * Turns zod issues into the lines a person reads: one per issue, each naming
 * the path in the config, what was expected and what was written, with a
 * suggestion for an unknown key that is close to a known one.
 */

/** Reads the value at a config path, to quote what the user actually wrote. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

/** A JSON Schema node, as far as the walk below reads it. */
interface SchemaNode {
  readonly properties?: Record<string, SchemaNode>;
  readonly anyOf?: readonly SchemaNode[];
  readonly items?: SchemaNode;
}

/** The keys the JSON Schema allows at an object path (every branch of a union). */
export function knownKeysAt(schema: SchemaNode, path: readonly PropertyKey[]): string[] {
  let nodes: SchemaNode[] = [schema];
  for (const segment of path) {
    const next: SchemaNode[] = [];
    for (const node of nodes.flatMap(branches)) {
      if (typeof segment === 'number' && node.items) next.push(node.items);
      const child = node.properties?.[String(segment)];
      if (child) next.push(child);
    }
    nodes = next;
  }
  return [...new Set(nodes.flatMap(branches).flatMap((node) => Object.keys(node.properties ?? {})))];
}

function branches(node: SchemaNode): SchemaNode[] {
  return node.anyOf ? node.anyOf.flatMap(branches) : [node];
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment), case-insensitive, for did-you-mean. */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  const d: number[][] = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const row = d[i] as number[];
      const above = d[i - 1] as number[];
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      let best = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) best = Math.min(best, ((d[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = best;
    }
  }
  return (d[x.length] as number[])[y.length] as number;
}

/** The known key closest to `key`, when it is close enough to be a typo (a third of its length, at least 1). */
export function closestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const candidate of known) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** One line for one zod issue: `workers.count: expected a positive integer, got "two"`. */
export function formatIssue(input: unknown, issue: z.core.$ZodIssue, schema: SchemaNode, file: string | null): string {
  const path = issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const where = file === null ? (path ?? '(config)') : path === null ? file : `${file}: ${path}`;
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(schema, issue.path);
    const keys = issue.keys.map((key) => {
      const suggestion = closestKey(key, known);
      return suggestion === null ? JSON.stringify(key) : `${JSON.stringify(key)} (did you mean ${JSON.stringify(suggestion)}?)`;
    });
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys.join(', ')}`;
  }
  const message = issue.message.replace(/^Invalid input: /, '').replace(/, received \w+$/, '');
  if (issue.code === 'custom' && /^expected a token:/.test(message)) return `${where}: ${message}`;
  const got = valueAt(input, issue.path);
  return `${where}: ${message}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`;
}
