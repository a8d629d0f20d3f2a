import type { ErrorCode } from '../errors.js';

/**
 * The result of every parser in `src/shared/protocol/`: a pure function over a Buffer
 * either needs more bytes, is done (with how many bytes the header used), or
 * has seen an impossible byte and says why with a stable code.
 */
export type ParseResult<T> =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'done'; readonly value: T; readonly consumed: number }
  | { readonly kind: 'error'; readonly code: ErrorCode };

/** The one shared "need more bytes" value (parsers allocate nothing to say it). */
export const NEED_MORE = Object.freeze({ kind: 'need-more' }) as { readonly kind: 'need-more' };

/** Builds an error result. */
export function parseError(code: ErrorCode): { readonly kind: 'error'; readonly code: ErrorCode } {
  return { kind: 'error', code };
}
