import { isDeepStrictEqual } from 'node:util';
import type { AgentConfig } from '../config/expose-config.js';

/** The keys of `agent:` that a reload applies to a running agent (Agent.updateConnection). */
const CONNECTION_KEYS = ['gateway', 'gateways', 'homes', 'token', 'fingerprint', 'fingerprints', 'ca', 'serverName', 'reconnect'] as const;

/** 'none' when `next` equals `current`, 'connection' when only CONNECTION_KEYS differ, else 'restart'. */
export function agentChange(current: AgentConfig, next: AgentConfig): 'none' | 'connection' | 'restart' {
  if (isDeepStrictEqual(current, next)) return 'none';
  const strip = (c: AgentConfig) => ({ ...c, ...Object.fromEntries(CONNECTION_KEYS.map((k) => [k, undefined])) });
  return isDeepStrictEqual(strip(current), strip(next)) ? 'connection' : 'restart';
}
