import type { ReuseMode } from '../../shared/key/reuse.js';
import type { RequestHook } from '../request-hooks.js';
import { closeRequestHook } from './close.js';
import type { ReuseContext } from './context.js';
import { handbackConnectionHook } from './handback.js';
import { offRequestHook } from './off.js';

/**
 * The hooks for a key.reuse mode other than "forward" (src/worker/reuse/forward.ts);
 * "handback" needs no request hook: the connection hook does it all.
 */
export function reuseHooks(mode: Exclude<ReuseMode, 'forward'>, ctx: ReuseContext): { connection: ReturnType<typeof handbackConnectionHook> | null; request: RequestHook | null } {
  switch (mode) {
    case 'handback':
      return { connection: handbackConnectionHook(ctx), request: null };
    case 'close':
      return { connection: null, request: closeRequestHook(ctx.rules, ctx.stickyCookie !== undefined) };
    case 'off':
      return { connection: null, request: offRequestHook(ctx) };
  }
}
