import type { ServiceTransport } from '../protocol/tunnel/index.js';

/** Who holds a name on a shared port: an agent's link (by identity, so a superseded link is told apart) and its service. */
export interface NameHolder {
  /** The agent; empty for an agent pool. */
  readonly agent: string;
  /** An agent pool's group: its members share the name through the pool's one route (agent-pools.ts). */
  readonly group?: string | undefined;
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
 * Agents share a name only as an agent pool: the pool (one route whose upstream balances over
 * its members) is the one holder, claimed when its first member opens it and released when its
 * last member leaves; members join the pool, never the claim. Any other second claim is refused.
 */
export class NameClaims {
  readonly #held = new Map<string, NameHolder>();

  /** Takes `name` for `holder`; the current holder when someone else has it. */
  claim(transport: ServiceTransport, name: string, holder: NameHolder): NameHolder | undefined {
    const key = `${transport} ${name}`;
    const held = this.#held.get(key);
    if (held !== undefined && !held.gone() && held !== holder) return held;
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
