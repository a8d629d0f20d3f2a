import farmhash from 'farmhash';
import t from 'tap';
import { MAX_RECENT_HASHES, hashKey } from '../../../src/shared/ring/farmhash.js';

t.test('hashKey is farmhash fingerprint32 (unsigned), first time, remembered, and after the memory fills', (t) => {
  const keys = Array.from({ length: MAX_RECENT_HASHES * 2 + 17 }, (_, i) => `198.18.${i >> 8}.${i & 255}#${i}`);
  let wrong = 0;
  // Twice over more keys than are remembered: misses, hits, and clears in between.
  for (let round = 0; round < 2; round++) {
    for (const key of keys) if (hashKey(key) !== farmhash.fingerprint32(key) >>> 0) wrong++;
    for (const key of keys.slice(0, 100)) if (hashKey(key) !== farmhash.fingerprint32(key) >>> 0) wrong++;
  }
  t.equal(wrong, 0);
  t.equal(hashKey('a'), hashKey('a'));
  t.ok(hashKey('\u00e9\u{1F600}') >= 0, 'non-ASCII keys hash to unsigned values');
  t.equal(hashKey('\u00e9\u{1F600}'), farmhash.fingerprint32('\u00e9\u{1F600}') >>> 0);
  t.end();
});
