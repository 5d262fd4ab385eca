import type { Admitter } from '../admission/admitter.js';
import type { ReverdictCount } from '../admission/reverdict.js';
import { sharedListenKey, sharedListenKeys } from '../config/route-match.js';
import type { RouteConfig } from '../config/types.js';
import type { EndReason } from '../observe/events.js';
import type { RouteRuntime, SessionInfo } from './route.js';
import { SharedTcpListener } from './sni-listener.js';
import { TcpRoute, type TcpRouteDeps } from './tcp-route.js';

/**
 * The node's shared TCP listeners (routing by name, docs/sni.md), one per address where a route
 * has `match`: the first route there binds it, the last one to leave closes it.
 */
export class SharedTcpListeners {
  readonly #listeners = new Map<string, Promise<SharedTcpListener>>();
  #keys = new Set<string>();

  /** The routes of the config being applied: which addresses are shared. Call before `start`. */
  plan(routes: readonly RouteConfig[]): void {
    this.#keys = sharedListenKeys(routes);
  }

  /** Whether `route` goes on a shared listener rather than one of its own. */
  wants(route: RouteConfig): boolean {
    return route.listen.transport === 'tcp' && (route.match !== undefined || this.#keys.has(sharedListenKey(route.listen)));
  }

  async start(route: RouteConfig, deps: TcpRouteDeps): Promise<RouteRuntime<RouteConfig>> {
    const key = sharedListenKey(route.listen);
    let starting = this.#listeners.get(key);
    if (starting === undefined) {
      starting = SharedTcpListener.start(key, route.listen, deps);
      this.#listeners.set(key, starting);
      starting.catch(() => this.#listeners.delete(key));
    }
    const listener = await starting;
    const member = TcpRoute.attach(route, deps, listener.local);
    listener.join(member);
    return new SharedRoute(member, listener, () => {
      if (listener.members === 0 && this.#listeners.get(key) === starting) this.#listeners.delete(key);
    });
  }
}

/** A route on a shared listener: its own sessions and settings; leaving the listener stops new connections. */
class SharedRoute implements RouteRuntime<RouteConfig> {
  #left: Promise<void> | undefined;

  constructor(
    private readonly route: TcpRoute<RouteConfig>,
    private readonly listener: SharedTcpListener,
    private readonly onLeft: () => void,
  ) {}

  get name(): string {
    return this.route.name;
  }
  get config(): RouteConfig {
    return this.route.config;
  }
  get local() {
    return this.route.local;
  }
  get active(): number {
    return this.route.active;
  }
  update(route: RouteConfig, admit: Admitter | undefined): void {
    this.route.update(route, admit);
  }
  reverdict(): ReverdictCount {
    return this.route.reverdict();
  }
  sessions(): SessionInfo[] {
    return this.route.sessions();
  }

  #leave(): Promise<void> {
    if (this.#left === undefined) {
      this.#left = this.listener.leave(this.route);
      this.onLeft();
    }
    return this.#left;
  }

  drain(): Promise<void> {
    return Promise.all([this.#leave(), this.route.drain()]).then(() => {});
  }

  close(reason: EndReason): Promise<void> {
    return Promise.all([this.#leave(), this.route.close(reason)]).then(() => {});
  }
}
