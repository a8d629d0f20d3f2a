import farmhash from 'farmhash';

/**
 * The key hash, the one place that knows about farmhash. `fingerprint32` is
 * farmhash's platform-independent, unseeded variant: the same key hashes the
 * same on every machine and every restart, which stickiness across restarts needs.
 */
export function hashKey(key: string): number {
  return farmhash.fingerprint32(key) >>> 0;
}
