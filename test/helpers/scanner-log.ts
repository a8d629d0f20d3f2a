import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Method + request-target of every line of test/fixtures/scanner-requests.txt,
 * real access-log lines (a ZmEu
 * phpMyAdmin probe, /w00tw00t…, a research scanner's huge URL).
 */
export function scannerRequests(): Array<{ method: string; target: string }> {
  return readFileSync(join(__dirname, '..', 'fixtures', 'scanner-requests.txt'), 'latin1')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const match = /"([A-Z]+) (\S+) HTTP\/1\.[01]"/.exec(line);
      if (!match) throw new Error(`not an access-log line: ${line.slice(0, 80)}`);
      return { method: match[1] as string, target: match[2] as string };
    });
}
