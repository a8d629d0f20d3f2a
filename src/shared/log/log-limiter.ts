/**
 * Rate-limits warn lines per reason: under a flood of refused connections an
 * attacker must not be able to fill the disk through our logs. At most `burst`
 * lines per reason each `windowMs`; the next line after a window says how many
 * were suppressed. Exact counts live in the metrics, not here.
 */
export class LogLimiter {
  private readonly windows = new Map<string, { start: number; logged: number; suppressed: number }>();

  constructor(
    private readonly burst = 10,
    private readonly windowMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Returns -1 when this line should be dropped, otherwise the number of lines
   * suppressed for the reason since the last one logged (to put in the line).
   */
  admit(reason: string): number {
    const now = this.now();
    let window = this.windows.get(reason);
    if (!window || now - window.start >= this.windowMs) {
      const suppressed = window?.suppressed ?? 0;
      window = { start: now, logged: 0, suppressed: 0 };
      this.windows.set(reason, window);
      window.logged++;
      return suppressed;
    }
    if (window.logged < this.burst) {
      window.logged++;
      return 0;
    }
    window.suppressed++;
    return -1;
  }
}
