/** Where a client key can come from, in the order `key.order` may list them. */
export const KEY_SOURCES = ['cookie', 'proxy', 'forwarded', 'remote'] as const;

/** One of {@link KEY_SOURCES}. */
export type KeySource = (typeof KEY_SOURCES)[number];

/**
 * What decided a connection's worker: a key source, or 'sticky' (a valid
 * sticky cookie named the slot). The index is a byte on the worker-to-worker
 * link (KEY frames), so the list only ever grows at the end.
 */
export const CONNECTION_KEY_SOURCES = [...KEY_SOURCES, 'sticky'] as const;

/** One of {@link CONNECTION_KEY_SOURCES}. */
export type ConnectionKeySource = (typeof CONNECTION_KEY_SOURCES)[number];
