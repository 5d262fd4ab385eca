import type { HostPort } from '../core/address.js';
import type { Clock, Timer } from '../core/clock.js';
import type { LocalHealthSettings } from '../config/agent-pool-schema.js';
import { resolveDestination, systemResolver, type Resolver } from '../upstream/direct/resolve.js';
import { MemberHealth, type CheckOutcome, type MemberState } from '../upstream/pool/member-state.js';
import { tcpProbe, udpProbe, type ExpectBytes } from '../upstream/pool/probe.js';

/** What the agent tells the gateway about a pool member's local service. */
export interface LocalHealthReport {
  readonly up: boolean;
  /** The last check's result, for people. */
  readonly message: string;
}

/**
 * An agent's check of one of its own local services (`expose.<name>.health`, docs/pools.md):
 * the pool core's TCP connect or UDP probe, sent only to the service's `local` address, one
 * check in flight at most, one every `interval`; `rise` passes bring it up, `fall` failures (or
 * one ICMP port unreachable) take it down. Each change is handed to `changed` once; the agent
 * sends it to the gateway as SERVICE_HEALTH.
 */
export class LocalHealthCheck {
  readonly #health: MemberHealth;
  #timer: Timer | undefined;
  #probing: AbortController | undefined;
  #closed = false;
  readonly #send: Buffer;
  readonly #expect: ExpectBytes | undefined;
  /** Checks run so far, and the last one's result. */
  checks = 0;
  lastMessage = 'not checked yet';

  constructor(
    private readonly settings: LocalHealthSettings,
    private readonly target: HostPort,
    private readonly clock: Clock,
    private readonly changed: (report: LocalHealthReport) => void,
    private readonly resolver: Resolver = systemResolver,
  ) {
    this.#health = new MemberHealth(`local service ${target.host}:${target.port}`, settings);
    this.#send = settings.sendHex ? Buffer.from(settings.sendHex, 'hex') : Buffer.alloc(0);
    this.#expect = settings.expectHex ? { bytes: Buffer.from(settings.expectHex, 'hex'), match: 'prefix' } : undefined;
    this.#timer = clock.setTimeout(() => void this.#run(), 0);
  }

  /** `unknown` until the first verdict, then `up` or `down`. */
  get state(): MemberState {
    return this.#health.state;
  }

  /** The current verdict as a report, or undefined before the first one. */
  get report(): LocalHealthReport | undefined {
    const s = this.#health.state;
    return s === 'unknown' ? undefined : { up: s === 'up', message: this.lastMessage };
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#probing?.abort();
  }

  async #run(): Promise<void> {
    if (this.#closed) return;
    const started = this.clock.now();
    const ac = new AbortController();
    this.#probing = ac;
    const timeout = this.clock.setTimeout(() => ac.abort(), this.settings.timeoutMs);
    let outcome: CheckOutcome;
    try {
      const to = await resolveDestination(this.target, this.resolver, 'trusted');
      outcome = this.settings.kind === 'udp' ? await udpProbe(to, this.#send, this.#expect, ac.signal) : await tcpProbe(to, this.#send.length > 0 ? this.#send : undefined, this.#expect, ac.signal);
    } catch {
      outcome = 'failed';
    }
    timeout.cancel();
    if (this.#closed) return;
    this.#probing = undefined;
    const elapsed = this.clock.now() - started;
    this.checks++;
    this.lastMessage = describe(this.settings.kind, outcome, elapsed, this.settings.timeoutMs);
    this.#timer = this.clock.setTimeout(() => void this.#run(), Math.max(0, this.settings.intervalMs - elapsed));
    // A new service is up at its first pass; one that went down needs `rise` passes (member-state.ts).
    const to = this.#health.checked(outcome);
    if (to) this.changed({ up: to === 'up', message: this.lastMessage });
  }
}

function describe(kind: 'tcp' | 'udp', outcome: CheckOutcome, elapsedMs: number, timeoutMs: number): string {
  if (outcome === 'ok') return `${kind} check passed in ${Math.round(elapsedMs)}ms`;
  if (outcome === 'refused') return kind === 'udp' ? 'port unreachable (ICMP)' : 'connection refused';
  return elapsedMs >= timeoutMs ? `no answer within ${timeoutMs}ms` : `${kind} check failed`;
}
