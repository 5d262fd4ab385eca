import type { ServiceTransport } from '../protocol/tunnel/index.js';

/** Who holds a name on a shared port: an agent's link (by identity, so a superseded link is told apart) and its service. */
export interface NameHolder {
  readonly agent: string;
  readonly service: string;
  readonly serviceId: number;
  /** The holder's link is gone (closed): its claim is being released and may be taken over. */
  gone(): boolean;
}

/**
 * The names exposures hold on the gateway's shared ports (docs/sni.md, "Exposures by name"): one
 * holder per transport and name. The same name on tls:// and quic:// are two claims. Exact and
 * wildcard names are different names (routing prefers the exact one), so `app.example.org` and
 * `*.example.org` may be held by two agents.
 *
 * Hook for agent pools: `mayShare` is where a later pool (agents of one `group`) would let a
 * second holder in; the shared route would then need a pool of the holders' dialers as its
 * upstream instead of one agent's. Until then nobody shares: the second claim is refused.
 */
export class NameClaims {
  readonly #held = new Map<string, NameHolder>();

  constructor(private readonly mayShare: (held: NameHolder, asking: NameHolder) => boolean = () => false) {}

  /** Takes `name` for `holder`; the current holder when someone else has it. */
  claim(transport: ServiceTransport, name: string, holder: NameHolder): NameHolder | undefined {
    const key = `${transport} ${name}`;
    const held = this.#held.get(key);
    if (held !== undefined && !held.gone() && held !== holder && !this.mayShare(held, holder)) return held;
    this.#held.set(key, holder);
    return undefined;
  }

  /** Gives `name` back if `holder` still has it. */
  release(transport: ServiceTransport, name: string, holder: NameHolder): void {
    const key = `${transport} ${name}`;
    if (this.#held.get(key) === holder) this.#held.delete(key);
  }

  get size(): number {
    return this.#held.size;
  }
}
