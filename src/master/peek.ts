import type { ErrorCode } from '../shared/errors.js';
import { parseRequestHead, type RequestHead } from '../shared/protocol/http1.js';
import { parseProxyHeader, type ProxyHeader } from '../shared/protocol/proxy.js';

/**
 * While fewer bytes than this are buffered, every chunk is parsed at once so
 * that non-HTTP bytes (a TLS ClientHello, SSH, binary) are recognised from the
 * first packet. Past it, a chunk is parsed only when it holds a LF: a head can
 * only end at one, and re-parsing on every byte of a slow drip would cost
 * O(n²) per hostile client.
 */
const EAGER_PARSE_BYTES = 512;

/** What the master has read of one connection so far. */
export interface PeekState {
  /** Every byte read, from the first (null before the first chunk). */
  buffered: Buffer | null;
  /** 'proxy' while a PROXY header may still come; then 'head'. */
  phase: 'proxy' | 'head';
  /** Where the application bytes start (after an honoured PROXY header). */
  offset: number;
  /** The honoured PROXY header, if one came. */
  proxy: ProxyHeader | null;
  /** The TCP peer is in proxyProtocol.trustedFrom (only its PROXY header counts). */
  readonly peerTrusted: boolean;
}

/** How the master peeks (from the config). */
export interface PeekRules {
  /** limits.peekBytes: the most the master reads before it decides. */
  readonly peekBytes: number;
  readonly proxyMode: 'off' | 'optional' | 'required';
  /** Whether the decision needs the first request head (cookie or forwarded keys, a sticky cookie, health checks, inspection). */
  readonly needsHead: boolean;
}

/** What to do after a chunk: read on, refuse with a code, or decide (with the head, or null when there is none to read). */
export type PeekStep = { readonly kind: 'wait' } | { readonly kind: 'refuse'; readonly code: ErrorCode } | { readonly kind: 'decide'; readonly head: RequestHead | null };

const WAIT: PeekStep = Object.freeze({ kind: 'wait' });
const DECIDE_WITHOUT_HEAD: PeekStep = Object.freeze({ kind: 'decide', head: null });

/** The state of a connection before its first byte. */
export function newPeekState(peerTrusted: boolean, rules: PeekRules): PeekState {
  return { buffered: null, phase: rules.proxyMode === 'off' ? 'head' : 'proxy', offset: 0, proxy: null, peerTrusted };
}

/** Whether the decision can be made before any byte (no PROXY header to wait for, no head needed). */
export function decidesWithoutBytes(rules: PeekRules): boolean {
  return rules.proxyMode === 'off' && !rules.needsHead;
}

/**
 * Takes one chunk: a PROXY header first (honoured only from a trusted peer),
 * then the first HTTP/1.x request head. Bytes that are not an HTTP/1.x head
 * (TLS, HTTP/2, binary) or a head over `peekBytes` decide at once, with the
 * key sources that need no head. Updates `state`; never throws.
 */
export function readPeek(state: PeekState, chunk: Buffer, rules: PeekRules): PeekStep {
  const previous = state.buffered;
  const buffered = previous === null ? chunk : Buffer.concat([previous, chunk]);
  state.buffered = buffered;
  if (state.phase === 'proxy') {
    const result = parseProxyHeader(buffered, { maxBytes: rules.peekBytes });
    switch (result.kind) {
      case 'need-more':
        return buffered.length > rules.peekBytes ? { kind: 'refuse', code: 'ERR_PEEK_LIMIT' } : WAIT;
      case 'error':
        return { kind: 'refuse', code: state.peerTrusted ? result.code : 'ERR_PROXY_UNTRUSTED' };
      case 'absent':
        if (rules.proxyMode === 'required') return { kind: 'refuse', code: 'ERR_PROXY_REQUIRED' };
        state.phase = 'head';
        break;
      case 'done':
        if (!state.peerTrusted) return { kind: 'refuse', code: 'ERR_PROXY_UNTRUSTED' };
        state.proxy = result.value;
        state.offset = result.consumed;
        state.phase = 'head';
        if (!rules.needsHead) return DECIDE_WITHOUT_HEAD;
        break;
    }
  } else if (buffered.length - state.offset > EAGER_PARSE_BYTES && chunk.indexOf(10) === -1 && previous !== null && previous.length > state.offset) {
    // Slow drip without a line end: the head cannot have ended (see EAGER_PARSE_BYTES).
    // Only once some head bytes were parsed already: the first chunk after a PROXY
    // header (e.g. curl's 517-byte ClientHello, often without a 0x0A) must be parsed,
    // or a TLS client would wait for peekBytes that never come.
    return buffered.length - state.offset >= rules.peekBytes ? DECIDE_WITHOUT_HEAD : WAIT;
  }
  if (buffered.length === state.offset) return WAIT;
  const result = parseRequestHead(buffered, state.offset, rules.peekBytes);
  if (result.kind === 'need-more') return WAIT;
  return result.kind === 'done' ? { kind: 'decide', head: result.value } : DECIDE_WITHOUT_HEAD;
}
