import type { Logger } from 'pino';
import type { ErrorCode } from '../shared/errors.js';
import { LogLimiter } from '../shared/log/log-limiter.js';
import type { MasterMetrics } from './admin/metrics.js';
import type { ClientConn } from './client-conn.js';

/**
 * How long the master keeps a connection whose first request it answered
 * itself (a refusal, a 429, a health check) after writing the answer: it reads
 * and drops what the client still sends meanwhile, so that closing does not
 * reset the connection before the client has read the answer (NGINX's
 * lingering_close, bounded).
 */
const ANSWER_LINGER_MS = 1000;

/**
 * How the master turns a connection away: closed without a byte, or with a
 * short answer of its own. Every refusal is counted by its code and logged at
 * a bounded rate per reason with the real client.
 */
export class Refuser {
  private readonly logLimiter = new LogLimiter();

  constructor(
    private readonly metrics: MasterMetrics,
    private readonly log: Logger,
  ) {}

  /** Closes a connection without writing a byte; counted and logged (rate-limited). */
  refuse(conn: ClientConn, client: string, code: ErrorCode): void {
    this.counted(code, { client, reason: code }, 'connection refused');
    conn.close();
  }

  /** Counts a refusal and logs it at the bounded rate; `fields` name the client and the reason. */
  counted(code: ErrorCode, fields: Record<string, unknown>, message: string): void {
    this.metrics.refused.inc({ reason: code });
    this.warn(code, fields, message);
  }

  /**
   * Whether a line for `reason` may be written now: how many were suppressed
   * since the last one, or -1 (for callers whose fields cost something to build).
   */
  admit(reason: string): number {
    return this.logLimiter.admit(reason);
  }

  /** A warn line, at most a few per second for one `reason` (the rest counted in the next line's `suppressed`). */
  warn(reason: string, fields: Record<string, unknown>, message: string): void {
    const suppressed = this.logLimiter.admit(reason);
    if (suppressed >= 0) this.log.warn({ ...fields, suppressed }, message);
  }

  /** An error line at the same bounded rate (accept failures). */
  error(reason: string, fields: Record<string, unknown>, message: string): void {
    const suppressed = this.logLimiter.admit(reason);
    if (suppressed >= 0) this.log.error({ ...fields, suppressed }, message);
  }

  /** Writes a short answer on a connection the master read from, then a bounded lingering close. */
  answerAndClose(conn: ClientConn, bytes: Buffer): void {
    const socket = conn.toSocket();
    socket.on('error', ignoreError);
    socket.on('data', dropBytes);
    const linger = setTimeout(() => socket.destroy(), ANSWER_LINGER_MS);
    socket.once('close', () => clearTimeout(linger));
    socket.end(bytes);
  }
}

function dropBytes(): void {
  // A refused client's further bytes are read only to be dropped (see ANSWER_LINGER_MS).
}

function ignoreError(): void {
  // Client resets are normal; the 'close' that follows does the bookkeeping.
}
