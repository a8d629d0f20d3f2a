/**
 * What every launcher shares: argv parsing and the one line that tells
 * bench/compare.ts the contender is ready to be measured.
 */

/** `node launcher.js PORT [WORKERS]`. */
export function launchArgs(): { readonly port: number; readonly workers: number } {
  const port = Number(process.argv[2]);
  const workers = Number(process.argv[3] ?? 2);
  if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(workers) || workers <= 0) {
    process.stderr.write('usage: node <launcher>.js PORT [WORKERS]\n');
    process.exit(2);
  }
  return { port, workers };
}

/** Printed once every worker can take connections (compare.ts waits for it). */
export function announceReady(port: number): void {
  process.stdout.write(`bench-ready ${port}\n`);
}
