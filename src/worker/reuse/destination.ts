import type { ConnectionInfo } from '../../shared/connection-info.js';
import { deriveKey, type ClientKey, type KeyContext } from '../../shared/key/derive.js';
import { nowSeconds, readStickyCookie } from '../../shared/key/sticky-cookie.js';
import { placeKey, type PlacementView } from '../../shared/placement.js';
import type { RequestHead } from '../../shared/protocol/http1.js';
import { hashKey } from '../../shared/ring/farmhash.js';
import type { HandbackKey } from '../../shared/wire/fd-batch.js';
import type { ReuseContext } from './context.js';
import { stickyRejectedInWorker } from './metrics.js';

/** The master's pool as last announced (`pool-view`); null until the first one. */
let poolView: (PlacementView & { readonly pids: readonly number[] }) | null = null;

/**
 * Takes the master's `pool-view` message (`pids`: each ready slot's worker,
 * for its link; `full`: the slots at the load bound, with balanceFactor).
 */
export function setPoolView(slotCount: number, ready: readonly number[], pids: readonly number[] = [], full?: readonly number[]): void {
  poolView = { slotCount, ready: Uint8Array.from(ready), pids, full: full === undefined ? undefined : Uint8Array.from(full) };
}

/** The pid of a ready slot's worker (its link's name), or 0. */
export function readyPid(slot: number): number {
  const view = poolView;
  if (view === null || slot < 0 || slot >= view.slotCount || view.ready[slot] !== 1) return 0;
  return view.pids[slot] ?? 0;
}

/** Where a request belongs. */
export interface Destination {
  readonly key: ClientKey;
  /** The slot a valid sticky cookie names, or -1. */
  readonly stickySlot: number;
  /** This worker's slot when the request is its own. */
  readonly slot: number;
}


/**
 * Where a request with this head belongs: the master's own decision
 * (src/shared/placement.ts) over the pool view it last sent, with the slot of
 * a valid sticky cookie pinned. Without a pool view yet: this slot exactly
 * when the key is the connection's (the master decides otherwise).
 */
export function destination(head: RequestHead, info: ConnectionInfo, ctx: ReuseContext): Destination {
  const keyContext: KeyContext = {
    head,
    proxySource: info.proxy?.source?.address ?? null,
    peerAddress: info.peer ?? '',
    peerTrusted: info.peerTrusted === true,
  };
  const key = deriveKey(keyContext, ctx.rules);
  const view = poolView;
  let stickySlot = -1;
  if (ctx.stickyCookie !== undefined) {
    const verdict = readStickyCookie(head.cookie, nowSeconds(), ctx.stickyCookie);
    if (verdict.kind === 'invalid') stickyRejectedInWorker.inc({ reason: verdict.reason });
    else if (verdict.kind === 'valid' && (view === null || (verdict.slot < view.slotCount && view.ready[verdict.slot] === 1))) stickySlot = verdict.slot;
  }
  let slot: number;
  if (view !== null) slot = placeKey(hashKey(key.key), view, undefined, stickySlot).slot;
  else slot = stickySlot !== -1 ? stickySlot : key.key === info.key ? ctx.slot : -1;
  return { key, stickySlot, slot };
}

/** Where the master routes a connection handed back for a request going to `to`. */
export function handbackKeyOf(to: Destination): HandbackKey {
  return { key: to.key.key, keySource: to.key.source, ...(to.stickySlot === -1 ? {} : { stickySlot: to.stickySlot }) };
}

/** `info` with the key and key source of a request going to `to` (`info` itself when they are the same). */
export function withKeyOf(info: ConnectionInfo, to: Destination): ConnectionInfo {
  const keySource = to.stickySlot === -1 ? to.key.source : 'sticky';
  return to.key.key === info.key && keySource === info.keySource ? info : { ...info, key: to.key.key, keySource };
}
