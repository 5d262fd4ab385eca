import type { SourcePrefix } from '../core/source-prefix.js';

/**
 * The `crowdsec:` section, compiled (docs/crowdsec.md). One Local API, one bouncer key, shared by
 * every route whose acl says `crowdsec: true`.
 */
export interface CrowdsecSettings {
  /** Base URL of the Local API, e.g. `http://127.0.0.1:8080/`; always ends with `/`. */
  readonly url: string;
  /** A bouncer key (`cscli bouncers add <name>`), sent as X-Api-Key. */
  readonly apiKey: string;
  /** `observe`: record the would-be refusal and admit. */
  readonly mode: CrowdsecMode;
  /** What happens while no decision list is usable (never loaded, or stale). */
  readonly onUnavailable: 'allow' | 'deny';
  /** Milliseconds between the starts of two pulls. */
  readonly intervalMs: number;
  /** Milliseconds one pull may take, connection to last body byte. */
  readonly timeoutMs: number;
  /** How much of a client an Ip decision bans (`banPrefix`); absent = the address itself. */
  readonly banPrefix?: SourcePrefix;
}

export type CrowdsecMode = 'enforce' | 'observe';

/** Shortest interval and timeout the config accepts, in milliseconds. */
export const MIN_INTERVAL_MS = 100;

/** Why `text` cannot be a Local API base URL, or undefined when it can. */
export function lapiUrlIssue(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return `expected an http:// or https:// URL such as http://127.0.0.1:8080, got "${text}"`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `expected an http:// or https:// URL, got ${u.protocol}//`;
  if (u.username || u.password) return 'credentials do not belong in the URL; the bouncer key goes in apiKey';
  if (u.search || u.hash) return 'the URL must not have a query or fragment';
  return undefined;
}

/** The base URL with exactly one trailing `/`, so `v1/...` resolves under any path prefix. */
export function normaliseLapiUrl(text: string): string {
  const u = new URL(text);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.toString();
}
