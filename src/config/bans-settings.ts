import type { SourcePrefix } from '../core/source-prefix.js';

/** "`count` events from one source within `windowMs`". */
export interface BanCondition {
  readonly count: number;
  readonly windowMs: number;
}

/** "More than `bytes` moved (both directions) by one source within `windowMs`". */
export interface BytesCondition {
  readonly bytes: number;
  readonly windowMs: number;
}

/** One entry of `bans.rules`, compiled (docs/bans.md). */
export interface BanRule {
  readonly name: string;
  /** New sessions or connections admitted on the routes the rule applies to. */
  readonly newSessionsPer?: BanCondition;
  /** Sessions or connections refused there (ACL, caps, rates, PROXY header errors; not bans themselves). */
  readonly rejectionsPer?: BanCondition;
  /** Bytes moved by the source's sessions there, both directions, live sessions included. */
  readonly bytesPer?: BytesCondition;
  /** How long the first ban lasts. */
  readonly banMs: number;
  /** Each repeat offence of the same source multiplies the last duration by this (1 = no escalation). */
  readonly escalate: number;
  /** Escalation never goes beyond this. */
  readonly maxBanMs: number;
  /** What is banned: the source's address, or its network of this length. */
  readonly scope: SourcePrefix;
  /** `observe`: record a `ban-added` event marked observeOnly, ban nothing. */
  readonly mode: 'enforce' | 'observe';
}

/** The `bans:` section, compiled. */
export interface BansSettings {
  readonly rules: readonly BanRule[];
  /** Networks never banned, by rules or by the API. */
  readonly allow: readonly string[];
  /** Rules of routes that do not list their own (`routes.<name>.bans`), also exposed services and container routes. */
  readonly default: readonly string[];
  /** Directory of the state file `bans.json`. */
  readonly stateDir: string;
  /** Sources whose counts and offences are remembered at most (least recently seen ones are forgotten). */
  readonly maxTracked: number;
}
