import type http from 'node:http';
import { Duplex, type DuplexOptions } from 'node:stream';

/**
 * A Duplex that learns when Node's http server finishes each response written
 * to it. The server sets the response it is writing on its socket as
 * `_httpMessage` and clears it once that response is complete
 * (lib/_http_server.js assignSocket/detachSocket; checked on Node 22, 24, 26),
 * whatever the app does: checkContinue, 417, a 400 for a missing Host. So a
 * stream standing in for a socket knows when a response ends without
 * patching responses.
 */
export abstract class ResponseTrackingDuplex extends Duplex {
  private currentResponse: http.ServerResponse | null = null;

  constructor(options: DuplexOptions) {
    super(options);
  }

  /** Called when the server finished the response it was writing. */
  protected abstract onResponseFinished(): void;

  /** True while the server is writing a response here. */
  get responding(): boolean {
    return this.currentResponse !== null;
  }

  /** Node's own field name: the http server reads and writes it. */
  get _httpMessage(): http.ServerResponse | null {
    return this.currentResponse;
  }

  set _httpMessage(response: http.ServerResponse | null) {
    const finished = this.currentResponse !== null && response === null;
    this.currentResponse = response;
    if (finished) this.onResponseFinished();
  }
}
