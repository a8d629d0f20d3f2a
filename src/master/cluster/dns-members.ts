import { promises as dns } from 'node:dns';
import { memberId, readAndReport, type MemberRecord, type MemberSource } from './members.js';

/** Answers that mean "no records of this family", not a failure. */
const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND']);

/**
 * Members from the A and AAAA records of one name, read every `intervalMs`:
 * a Kubernetes headless service (one record per ready pod), Consul DNS, AWS
 * Cloud Map. DNS cannot say "draining": a node that leaves stops answering on
 * its peer port and its peers skip it until the records drop it.
 */
export class DnsMembers implements MemberSource {
  private readonly resolver: dns.Resolver;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly port: number,
    private readonly intervalMs: number,
    servers?: readonly string[],
  ) {
    // Bounded: a dead name server must not hold a read past the next one.
    this.resolver = new dns.Resolver({ timeout: Math.max(200, Math.min(2000, Math.floor(intervalMs / 2))), tries: 2 });
    if (servers !== undefined) this.resolver.setServers([...servers]);
  }

  async start(onMembers: (members: readonly MemberRecord[]) => void, onError: (error: Error) => void): Promise<void> {
    const read = (): Promise<void> => readAndReport(() => this.read(), () => this.stopped, onMembers, onError);
    await read();
    const again = (): void => {
      this.timer = setTimeout(() => void read().then(() => !this.stopped && again()), this.intervalMs);
      this.timer.unref();
    };
    if (!this.stopped) again();
  }

  /** One read of both families; throws when neither answered. */
  async read(): Promise<MemberRecord[]> {
    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(this.name), this.resolver.resolve6(this.name)]);
    const failures = [v4, v6].filter((result): result is PromiseRejectedResult => result.status === 'rejected' && !NO_RECORDS.has((result.reason as NodeJS.ErrnoException).code ?? ''));
    if (failures.length === 2) throw failures[0]?.reason as Error;
    const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    return addresses.map((address) => ({ id: memberId(address, this.port), draining: false }));
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.resolver.cancel();
    return Promise.resolve();
  }
}
