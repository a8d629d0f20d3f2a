import type { Test } from 'tap';

/**
 * One canary assertion: its message names the Node internal and the running
 * Node, so that a new Node line that changes the shape shows up as one red
 * line saying what moved.
 */
export function canary(t: Test, internal: string, ok: boolean, what: string): void {
  t.ok(ok, `${internal} on Node ${process.version}: ${what}`);
}
