import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { LinkDirectory } from '../../../src/master/supervisor/link-directory.js';

t.test('made once on first use, private to the user (0700), removed on remove()', async (t) => {
  const links = new LinkDirectory(pino({ level: 'silent' }));
  const dir = links.path() as string;
  t.ok(dir !== null && existsSync(dir));
  t.equal(statSync(dir).mode & 0o777, 0o700);
  t.equal(links.path(), dir, 'the same directory every time');
  links.remove();
  t.notOk(existsSync(dir));
});

t.test('a temporary directory that cannot be written: null, and it is not tried again', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'sticky-links-test-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = join(base, 'missing');
  t.teardown(() => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  });
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
  const links = new LinkDirectory(log);
  t.equal(links.path(), null);
  t.equal(links.path(), null);
  t.equal(lines.length, 1, 'one warn line');
  t.match(lines[0], /hands back instead/);
});
