import type { Logger } from 'pino';
import { formatHostPort, type Endpoint } from '../core/address.js';
import type { Clock } from '../core/clock.js';
import type { SluiceConfig } from '../config/types.js';
import type { AdminConfig } from '../config/observe-schema.js';
import type { EventStream, Sink } from '../observe/events.js';
import { AdminServer, type AdminServerDeps } from '../admin/admin-server.js';
import { loadAdminTls } from '../admin/admin-tls.js';

export interface AdminListenerDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly events: EventStream;
  /** What the admin server serves (its own clock and log are added here). */
  readonly serve: Omit<AdminServerDeps, 'clock' | 'log'>;
  /** The sinks of the views the listener shows (recent activity, live stream, traffic, sources). */
  readonly views: readonly Sink[];
}

/**
 * The admin listener of `admin:`, kept across reloads: the same address and TLS settings keep the
 * listener (a new token or certificate is swapped in); a new address is bound before the old
 * listener closes, so a bind failure leaves the old one serving. The views it shows (recent
 * activity, live stream, traffic, sources) are subscribed to the event stream while it runs.
 */
export class AdminListener {
  #admin: AdminServer | undefined;
  #unsubscribeViews: (() => void) | undefined;
  /** The port the listener got (port 0 in the config keeps it across a TLS change). */
  #port: number | undefined;

  constructor(private readonly deps: AdminListenerDeps) {}

  /** The bound address, while the listener runs. */
  get address(): Endpoint | undefined {
    return this.#admin?.address;
  }

  /** True while the listener speaks HTTPS (`admin.tls`). */
  get secure(): boolean {
    return this.#admin?.secure ?? false;
  }

  /**
   * Subscribes the views when `admin:` is configured, before the listener binds: they see the
   * routes come up, as the listener's first page shows them.
   */
  watch(config: AdminConfig | undefined): void {
    if (config) this.#unsubscribeViews ??= this.#subscribeViews();
  }

  /** Applies `admin:` (undefined: closes the listener). Throws SLUICE_ERR_BIND; the old listener then stays. */
  async apply(config: AdminConfig | undefined, gateway?: SluiceConfig['gateway']): Promise<void> {
    let old = this.#admin;
    if (!config) {
      this.#admin = undefined;
      this.#unsubscribeViews?.();
      this.#unsubscribeViews = undefined;
      await old?.close();
      return;
    }
    // The same listener when host and port are unchanged, or the port now names the one port 0 picked.
    const sameAddress = old && old.config.listen.host === config.listen.host && (config.listen.port === old.config.listen.port || config.listen.port === old.address.port);
    const sameTls = old && JSON.stringify(old.config.tls) === JSON.stringify(config.tls);
    const tls = await loadAdminTls(config.tls, gateway);
    if (old && sameAddress && sameTls) {
      if (tls) old.setCertificate(tls);
      old.setToken(config.token);
      return;
    }
    const { clock, log } = this.deps;
    if (tls?.generated) log.warn({ fingerprint: tls.fingerprint }, `admin: generated the gateway certificate; pin it with fingerprint: ${tls.fingerprint}`);
    if (old && sameAddress) {
      // Only TLS changed: the port must be free before it is bound again.
      this.#admin = undefined;
      await old.close();
      old = undefined;
      config = { ...config, listen: { ...config.listen, port: this.#port ?? config.listen.port } };
    }
    const admin = await AdminServer.start(config, { clock, log, ...this.deps.serve }, tls);
    this.#admin = admin;
    this.#port = admin.address.port;
    this.#unsubscribeViews ??= this.#subscribeViews();
    log.info(
      { address: formatHostPort(admin.address.address, admin.address.port), token: config.token !== undefined, tls: tls !== undefined, ...(tls ? { fingerprint: tls.fingerprint } : {}) },
      'admin listening',
    );
    await old?.close();
  }

  #subscribeViews(): () => void {
    const unsubscribe = this.deps.views.map((sink) => this.deps.events.subscribe(sink));
    return () => unsubscribe.forEach((u) => u());
  }
}
