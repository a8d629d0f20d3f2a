import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** The `log` section of the config. */
export interface LogOptions {
  readonly level: pino.LevelWithSilent;
  readonly pretty: boolean;
}

/**
 * The one way every process of the balancer makes its logger. JSON lines for
 * machines: the level as its name (`"level":"info"`) and the time as ISO 8601,
 * which log shippers (CloudWatch, Loki, Elasticsearch, Datadog) read without a
 * pino-specific mapping. `pretty`: coloured, aligned lines for a person at a
 * terminal (pino-pretty, written synchronously so that a crash loses no line).
 */
export function createLogger(options: LogOptions, base: Record<string, unknown>): Logger {
  if (options.pretty) {
    return pino({ level: options.level, base }, pretty({ sync: true, singleLine: true, colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'hostname' }));
  }
  return pino({
    level: options.level,
    base,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
