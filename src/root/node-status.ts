import type { RouteRuntime } from '../listen/route.js';
import type { PoolView } from '../upstream/pool/pool.js';
import type { CrowdsecHolder } from '../admission/crowdsec/crowdsec-holder.js';
import type { Bans } from '../admission/bans/bans.js';
import type { ContainerRoutes } from '../discovery/container-routes.js';
import { banView } from '../admin/bans-api.js';
import type { AdmissionStatus, DataPathStatus, HealthStatus, PeerStatus } from '../ops/data-path-status.js';
import type { PartStack } from './part-stack.js';
import type { RouteSet } from './route-set.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Agent } from '../agent/agent.js';
import { exposedRoutes } from './exposure.js';
import type { Fleet } from '../fleet/fleet.js';
import type { LocalGateway } from '../fleet/membership.js';

/** The parts a status board shows; each is set once, when built, and taken off when closed. */
export interface ShownParts {
  routes: RouteSet;
  gateway: Gateway;
  agent: Agent;
  crowdsec: CrowdsecHolder;
  bans: Bans;
  containers: ContainerRoutes;
  fleet: Fleet;
}

/**
 * What the ops layer and admission read of the running parts (ops/data-path-status.ts). The root
 * shows each part here as it is built and takes it off as the part closes, so a reader during
 * start or stop sees exactly the parts that run, never a part half built or already closed.
 */
export class NodeStatus implements DataPathStatus {
  readonly #shown: Partial<ShownParts> = {};

  constructor(
    private readonly datapath: 'js' | 'native',
    private readonly streamDatapath: 'js' | 'native' = 'js',
    private readonly recordCipher?: 'ipsec-mb' | 'openssl',
    private readonly datagramCipher?: 'ipsec-mb' | 'openssl',
    private readonly congestion?: HealthStatus['congestion'],
  ) {}

  /** Shows `part` until the returned function takes it off. */
  show<K extends keyof ShownParts>(key: K, part: ShownParts[K]): () => void {
    if (this.#shown[key] !== undefined) throw new Error(`${key} is shown already`);
    this.#shown[key] = part;
    return () => {
      if (this.#shown[key] === part) delete this.#shown[key];
    };
  }

  /** Starts a part on `stack` and shows it from its start to the end of its close. */
  startOn<K extends keyof ShownParts>(
    stack: PartStack,
    key: K,
    build: (signal: AbortSignal) => ShownParts[K] | Promise<ShownParts[K]>,
    close: (part: ShownParts[K]) => void | Promise<void>,
  ): Promise<ShownParts[K]> {
    let hide = () => {};
    const started = async (signal: AbortSignal) => {
      const part = await build(signal);
      hide = this.show(key, part);
      return part;
    };
    return stack.start(key, started, async (part) => {
      try {
        await close(part);
      } finally {
        hide();
      }
    });
  }

  routes(): readonly RouteRuntime[] {
    return this.#shown.routes?.routes() ?? [];
  }

  /** The node's routes and the exposure's listeners: every open session is in one of them. */
  sessionRoutes(): readonly RouteRuntime[] {
    const exposed = exposedRoutes(this.#shown.gateway, this.#shown.agent);
    return exposed.length === 0 ? this.routes() : [...this.routes(), ...exposed];
  }

  pool(name: string): PoolView | undefined {
    return this.#shown.routes?.pool(name);
  }

  route(name: string): RouteRuntime | undefined {
    return this.#shown.routes?.route(name);
  }

  peers(): PeerStatus {
    return { gateway: this.#shown.gateway, agent: this.#shown.agent };
  }

  gatewayBanRules() {
    return this.#shown.gateway?.config.bans;
  }

  admission(): AdmissionStatus {
    const { bans, crowdsec } = this.#shown;
    return {
      bans,
      crowdsecBans: crowdsec?.current,
      // The ban list's own ban first (it holds on every route); else CrowdSec's decision on the source.
      banState: (source) => {
        const b = bans?.store.banOf(source);
        return b ? banView(b) : crowdsec?.current?.banOf(source);
      },
    };
  }

  health(): HealthStatus {
    const fleet = this.#shown.fleet?.health();
    return { datapath: this.datapath, streamDatapath: this.streamDatapath, ...(this.recordCipher ? { recordCipher: this.recordCipher } : {}), ...(this.datagramCipher ? { datagramCipher: this.datagramCipher } : {}), ...(this.congestion ? { congestion: this.congestion } : {}), containers: this.#shown.containers?.status(), ...(fleet ? { fleet } : {}) };
  }

  fleet(): Promise<unknown> | undefined {
    return this.#shown.fleet?.view();
  }

  /** What the fleet is told about this node's gateway: its attached agents and its load (none before it runs). */
  fleetLocal(settings: { readonly agentPortFallback?: number } = {}): LocalGateway {
    return {
      agentPort: () => this.#shown.gateway?.tcpAddress.port ?? settings.agentPortFallback ?? 0,
      agents: () => (this.#shown.gateway?.agents() ?? []).filter((l) => l.state === 'attached').map((l) => l.name),
      load: () => {
        const g = this.#shown.gateway;
        if (!g) return { agents: 0, sessions: 0 };
        return { agents: g.agents().filter((l) => l.state === 'attached').length, sessions: g.published().reduce((n, p) => n + p.route.active, 0) };
      },
    };
  }
}
