import { canonicalIp, formatHostPort, type HostPort } from '../core/address.js';
import type { AgentConfig } from '../config/expose-config.js';
import type { Resolver } from '../upstream/direct/resolve.js';
import type { AgentDatagramCounters } from './datagram-path.js';

/** Where one home connects: an address, or a name resolved on each attempt; the TLS name when resolved from one. */
export interface HomeTarget {
  readonly gateway: HostPort;
  readonly serverName: string | undefined;
}

/**
 * The homes of a config: `gateway:` is one home (its name resolved on each attempt, as always);
 * each entry of `gateways:` is one home, except a name that resolves to several addresses now,
 * which is one home per address (its TLS server name the name). A name that does not resolve now
 * stays one home that resolves on each attempt. Duplicates are dropped.
 */
export async function homeTargets(config: AgentConfig, resolver: Resolver): Promise<HomeTarget[]> {
  if (!config.gateways) return [{ gateway: config.gateway, serverName: undefined }];
  const out: HomeTarget[] = [];
  const seen = new Set<string>();
  const add = (t: HomeTarget) => {
    const key = formatHostPort(t.gateway.host, t.gateway.port);
    if (seen.has(key)) return;
    seen.add(key);
    out.push(t);
  };
  for (const g of config.gateways) {
    if (canonicalIp(g.host)) {
      add({ gateway: g, serverName: undefined });
      continue;
    }
    let addresses: { address: string }[] = [];
    try {
      addresses = await resolver(g.host);
    } catch {
      /* not now: the home resolves on each attempt */
    }
    if (addresses.length <= 1) add({ gateway: g, serverName: undefined });
    else for (const a of addresses) add({ gateway: { host: a.address, port: g.port }, serverName: g.host });
  }
  return out;
}

export function sumCounters(all: readonly AgentDatagramCounters[]): AgentDatagramCounters {
  const out = structuredClone(all[0]!);
  for (const c of all.slice(1)) {
    for (const k of ['toGateway', 'toGatewayOverTls', 'toGatewayDropped', 'fromGateway', 'fromGatewayOverTls', 'keepalives', 'acks'] as const) out[k] += c[k];
    for (const k of Object.keys(c.rejected) as (keyof AgentDatagramCounters['rejected'])[]) out.rejected[k] += c.rejected[k];
    for (const k of Object.keys(c.shed) as (keyof AgentDatagramCounters['shed'])[]) out.shed[k] += c.shed[k];
  }
  return out;
}
