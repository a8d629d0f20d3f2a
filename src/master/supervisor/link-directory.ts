import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';

/**
 * key.reuse "forward": the directory (mode 0700, from mkdtemp) where each
 * worker listens for links from the others. A directory and not abstract
 * sockets: those have no permissions, so any local user could connect to a
 * worker's link and inject requests. Made on first use, removed on every exit
 * path the process sees.
 */
export class LinkDirectory {
  private dir: string | null = null;
  private failed = false;

  constructor(private readonly log: Logger) {}

  /** The directory, made now if it is not yet; null when it cannot be made (the workers hand back instead). */
  path(): string | null {
    if (this.dir !== null || this.failed) return this.dir;
    try {
      const dir = mkdtempSync(join(tmpdir(), 'sticky-links-'));
      this.dir = dir;
      // Whatever way the master exits (a failed bind, a signal during a crash loop), no socket file stays behind.
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    } catch (error) {
      this.failed = true;
      this.log.warn({ err: (error as Error).message, tmpdir: tmpdir() }, 'cannot make the directory for worker-to-worker links; key.reuse "forward" hands back instead');
    }
    return this.dir;
  }

  /** Removes the directory (every worker has exited). */
  remove(): void {
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
