import type { BalanceAlgorithm } from './balance.js';

/** Active checks of a pool's members (`health.udp` / `health.tcp`). */
export interface ActiveCheckSettings {
  readonly intervalMs: number;
  /** Less than or equal to `intervalMs` (config check): at most one check per member in flight. */
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** Extra random delay before each check, as a fraction of `intervalMs` (0..1): checks never come faster than `intervalMs`. */
  readonly jitter: number;
}

/** Passive health (`health.passive`). */
export interface PassiveSettings {
  /** First ejection's length; each further one in a row doubles it, up to `maxEjectMs`. */
  readonly ejectMs: number;
  readonly maxEjectMs: number;
  /** A UDP session that sent at least this many datagrams with no reply for `silentMs` makes its member suspect; 0 = off. */
  readonly silentDatagrams: number;
  readonly silentMs: number;
}

export interface PoolSettings {
  readonly balance: BalanceAlgorithm;
  /** Absent: no active checks (members are `up` until passive health ejects them). */
  readonly check?: ActiveCheckSettings;
  readonly passive: PassiveSettings;
  /** What a live UDP session does when its member goes down: `move` to another member, or `keep` it. */
  readonly failover: 'move' | 'keep';
}

export const DEFAULT_PASSIVE: PassiveSettings = Object.freeze({ ejectMs: 10_000, maxEjectMs: 300_000, silentDatagrams: 0, silentMs: 10_000 });
