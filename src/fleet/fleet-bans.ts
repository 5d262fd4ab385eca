import type { Clock } from '../core/clock.js';
import type { BanInfo } from '../observe/events.js';
import type { BanStore } from '../admission/bans/ban-store.js';
import type { FleetLink } from './fleet-link.js';

/** The channel carrying ban changes between gateways. */
export const BANS_CHANNEL = 'bans';

type BanMessage = { t: 'add'; from: string; ban: BanInfo } | { t: 'remove'; from: string; target: string };

/**
 * Bans held on every gateway of the fleet (docs/fleet.md, "Bans"). A ban added to this gateway's
 * list (admin API, a ban rule) is published on `bans` and written to the hash `bans` (target ->
 * BanInfo JSON); every other gateway adopts it with its original times, which re-judges its live
 * sessions at once (Bans' `added` handling), so a banned client's sessions end there too. A
 * removal through the API travels the same way; expiry needs no message (every copy ends at the
 * same wall time). While Redis is down bans stay local; when it is back the hash is read (bans
 * missed meanwhile are adopted) and this gateway's bans are written again (Redis restarted empty
 * gets them back).
 */
export class FleetBans {
  /** True while a change from the fleet is being applied: it must not be published back. */
  #applying = false;
  #closed = false;
  readonly #unsubscribe: () => void;
  readonly #offStatus: () => void;
  readonly counters = { published: 0, adopted: 0, removed: 0 };

  constructor(
    private readonly link: FleetLink,
    private readonly store: BanStore,
    private readonly clock: Pick<Clock, 'wallNow'>,
  ) {
    store.onChange((c) => {
      if (this.#applying || this.#closed) return;
      if (c.kind === 'added') this.#publish({ t: 'add', from: link.name, ban: c.ban });
      else if (c.kind === 'removed') this.#publish({ t: 'remove', from: link.name, target: c.ban.target });
    });
    this.#unsubscribe = link.subscribe(BANS_CHANNEL, (m) => this.#onMessage(m));
    this.#offStatus = link.onStatus((s) => {
      if (s === 'ok') void this.sync();
    });
  }

  #publish(m: BanMessage): void {
    if (!this.link.publish(BANS_CHANNEL, JSON.stringify(m))) return;
    this.counters.published++;
    const key = this.link.key('bans');
    if (m.t === 'add') this.link.commands.hset(key, m.ban.target, JSON.stringify(m.ban)).catch(() => {});
    else this.link.commands.hdel(key, m.target).catch(() => {});
  }

  #onMessage(text: string): void {
    let m: BanMessage;
    try {
      m = JSON.parse(text) as BanMessage;
    } catch {
      return;
    }
    if (m.from === this.link.name || this.#closed) return;
    if (m.t === 'add' && validBan(m.ban)) this.#apply(() => this.store.adopt(m.ban) && this.counters.adopted++);
    else if (m.t === 'remove' && typeof m.target === 'string') this.#apply(() => this.store.remove(m.target) && this.counters.removed++);
  }

  #apply(fn: () => unknown): void {
    this.#applying = true;
    try {
      fn();
    } finally {
      this.#applying = false;
    }
  }

  /** Adopts the fleet's bans from the hash, drops ended ones from it, and writes this gateway's own. */
  async sync(): Promise<void> {
    if (this.link.status !== 'ok' || this.#closed) return;
    const key = this.link.key('bans');
    try {
      const held = await this.link.commands.hgetall(key);
      const now = this.clock.wallNow();
      const ended: string[] = [];
      for (const [target, text] of Object.entries(held)) {
        const ban = parseBan(text);
        if (!ban || ban.expiresAt <= now) ended.push(target);
        else this.#apply(() => this.store.adopt(ban) && this.counters.adopted++);
      }
      const p = this.link.commands.pipeline();
      if (ended.length > 0) p.hdel(key, ...ended);
      for (const ban of this.store.list()) if (!(ban.target in held)) p.hset(key, ban.target, JSON.stringify(ban));
      await p.exec();
    } catch {
      // Redis went away again: the next `ok` syncs.
    }
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    this.#offStatus();
  }
}

function parseBan(text: string): BanInfo | undefined {
  try {
    const b = JSON.parse(text) as BanInfo;
    return validBan(b) ? b : undefined;
  } catch {
    return undefined;
  }
}

function validBan(b: BanInfo | undefined): b is BanInfo {
  return !!b && typeof b.target === 'string' && typeof b.source === 'string' && typeof b.reason === 'string' && typeof b.createdAt === 'number' && typeof b.expiresAt === 'number';
}
