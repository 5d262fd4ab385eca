import type { Clock } from '../core/clock.js';
import type { KeySet } from './agent-udp.js';

/**
 * An agent link's datagram key sets kept through a resume's grace period (agent-link.ts), so
 * datagrams sealed before the agent switched keys still open: each batch is forgotten (`forget`,
 * the gateway's key index) when its grace ends, or at once by `forgetAll` when the link closes.
 */
export class RetiringKeys {
  readonly #pending = new Set<() => void>();

  constructor(
    private readonly clock: Clock,
    private readonly forget: (keyId: number) => void,
  ) {}

  /** Forgets `keys` after `graceMs`. */
  retire(keys: readonly KeySet[], graceMs: number): void {
    const retire = () => {
      timer.cancel();
      this.#pending.delete(retire);
      keys.forEach((k) => this.forget(k.keyId));
    };
    const timer = this.clock.setTimeout(retire, graceMs);
    this.#pending.add(retire);
  }

  /** Forgets every pending batch now. */
  forgetAll(): void {
    for (const retire of [...this.#pending]) retire();
  }
}
