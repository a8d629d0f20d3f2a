import farmhash from 'farmhash';

/**
 * The hashes of recent keys. farmhash is a native call that copies the string
 * out of V8, measurably slower than a Map lookup in a worker's per-request path
 * (key.reuse checks every request on a reused connection), and balancers send
 * the same clients again and again. Cleared when full, so a flood of new keys
 * costs one lookup and one insert each, and memory stays bounded by
 * {@link MAX_RECENT_HASHES} entries.
 */
const recent = new Map<string, number>();
export const MAX_RECENT_HASHES = 8192;

/**
 * The key hash, the one place that knows about farmhash. `fingerprint32` is
 * farmhash's platform-independent, unseeded variant: the same key hashes the
 * same on every machine and every restart, which stickiness across restarts needs.
 */
export function hashKey(key: string): number {
  const known = recent.get(key);
  if (known !== undefined) return known;
  const hash = farmhash.fingerprint32(key) >>> 0;
  if (recent.size >= MAX_RECENT_HASHES) recent.clear();
  recent.set(key, hash);
  return hash;
}
