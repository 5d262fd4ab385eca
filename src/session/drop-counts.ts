import type { DropReason, EventStream } from '../observe/events.js';
import type { Clock } from '../core/clock.js';

/**
 * Datagrams a UDP session table dropped since the last flush, one named counter per reason:
 * bumped in place on the per-datagram path, reported as `datagrams-dropped` events by the sweep.
 */
export class DropCounts {
  tooBig = 0;
  setupQueueFull = 0;
  sendError = 0;
  /** Datagrams queued for a session whose upstream never opened. */
  noSession = 0;
  proxyHeaderUntrusted = 0;
  proxyHeaderMissing = 0;
  proxyHeaderInvalid = 0;
  replyBudget = 0;
  bandwidth = 0;

  /** Counts one drop whose reason arrives as a value (the PROXY header classifier's answer). */
  count(reason: DropReason): void {
    switch (reason) {
      case 'too-big': this.tooBig++; break;
      case 'setup-queue-full': this.setupQueueFull++; break;
      case 'send-error': this.sendError++; break;
      case 'no-session': this.noSession++; break;
      case 'proxy-header-untrusted': this.proxyHeaderUntrusted++; break;
      case 'proxy-header-missing': this.proxyHeaderMissing++; break;
      case 'proxy-header-invalid': this.proxyHeaderInvalid++; break;
      case 'reply-budget': this.replyBudget++; break;
      case 'bandwidth': this.bandwidth++; break;
    }
  }

  /** Emits one event per reason with a count, in a fixed order; the counters restart at zero first. */
  flush(events: EventStream, clock: Clock, route: string): void {
    const any = this.tooBig + this.setupQueueFull + this.sendError + this.noSession + this.proxyHeaderUntrusted + this.proxyHeaderMissing + this.proxyHeaderInvalid + this.replyBudget + this.bandwidth;
    if (any === 0) return; // the usual sweep: nothing to report, nothing allocated
    const counts: readonly [DropReason, number][] = [
      ['too-big', this.tooBig],
      ['setup-queue-full', this.setupQueueFull],
      ['send-error', this.sendError],
      ['no-session', this.noSession],
      ['proxy-header-untrusted', this.proxyHeaderUntrusted],
      ['proxy-header-missing', this.proxyHeaderMissing],
      ['proxy-header-invalid', this.proxyHeaderInvalid],
      ['reply-budget', this.replyBudget],
      ['bandwidth', this.bandwidth],
    ];
    this.tooBig = this.setupQueueFull = this.sendError = this.noSession = 0;
    this.proxyHeaderUntrusted = this.proxyHeaderMissing = this.proxyHeaderInvalid = this.replyBudget = this.bandwidth = 0;
    for (const [reason, count] of counts) if (count !== 0) events.emit({ type: 'datagrams-dropped', at: clock.wallNow(), route, reason, count });
  }
}
