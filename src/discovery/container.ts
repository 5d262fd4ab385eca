import { canonicalIp, type HostPort, type Transport } from '../core/address.js';

/** A port the engine publishes on the host for a container (`docker run -p`). */
export interface PublishedPort {
  readonly privatePort: number;
  readonly publicPort: number;
  readonly type: Transport;
  /** Host address it is published on; undefined or a wildcard means every address. */
  readonly ip: string | undefined;
}

/**
 * What discovery needs of one container, read from the engine's list endpoint
 * (`GET /containers/json`, the same shape on Docker and on Podman's compatible API).
 */
export interface ContainerInfo {
  readonly id: string;
  /** Without Docker's leading slash. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Seconds since the epoch; orders containers that claim the same route. */
  readonly created: number;
  /** `running`, `exited`, `paused`, ... */
  readonly state: string;
  /** `--network host`: the container's ports are the host's. */
  readonly hostNetwork: boolean;
  /** Address on each network that gave it one, by network name. */
  readonly networks: Readonly<Record<string, string>>;
  readonly ports: readonly PublishedPort[];
}

/** Reads one entry of `GET /containers/json`; undefined when it has no id (never seen, but not trusted). */
export function containerFromSummary(json: unknown): ContainerInfo | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const o = json as Record<string, unknown>;
  const id = typeof o.Id === 'string' ? o.Id : undefined;
  if (!id) return undefined;
  const names = Array.isArray(o.Names) ? o.Names.filter((n): n is string => typeof n === 'string') : [];
  const name = (names[0] ?? id.slice(0, 12)).replace(/^\//, '');
  const labels: Record<string, string> = {};
  if (o.Labels && typeof o.Labels === 'object') {
    for (const [k, v] of Object.entries(o.Labels as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  const mode = (o.HostConfig as { NetworkMode?: unknown } | undefined)?.NetworkMode;
  const networks: Record<string, string> = {};
  const nets = (o.NetworkSettings as { Networks?: Record<string, { IPAddress?: unknown }> } | undefined)?.Networks;
  if (nets && typeof nets === 'object') {
    for (const [net, v] of Object.entries(nets)) {
      const ip = typeof v?.IPAddress === 'string' ? canonicalIp(v.IPAddress) : undefined;
      if (ip) networks[net] = ip.address;
    }
  }
  const ports: PublishedPort[] = [];
  if (Array.isArray(o.Ports)) {
    for (const p of o.Ports as Record<string, unknown>[]) {
      if (typeof p?.PrivatePort !== 'number' || typeof p.PublicPort !== 'number' || p.PublicPort === 0) continue;
      const type = p.Type === 'udp' ? 'udp' : p.Type === 'tcp' ? 'tcp' : undefined;
      if (!type) continue;
      ports.push({ privatePort: p.PrivatePort, publicPort: p.PublicPort, type, ip: typeof p.IP === 'string' && p.IP !== '' ? p.IP : undefined });
    }
  }
  return {
    id,
    name,
    labels,
    created: typeof o.Created === 'number' ? o.Created : 0,
    state: typeof o.State === 'string' ? o.State : 'running',
    hostNetwork: mode === 'host' || Object.hasOwn(nets ?? {}, 'host'),
    networks,
    ports,
  };
}

/**
 * Podman's compatible list (4.x) leaves out `HostConfig` and gives `Networks: null` even for a
 * container on the host's network; only inspecting it tells. True for such a summary.
 */
export function summaryLacksNetworking(json: unknown): boolean {
  return (json as { HostConfig?: { NetworkMode?: unknown } } | undefined)?.HostConfig?.NetworkMode === undefined;
}

/** The networking part of `GET /containers/{id}/json` (the inspect shape, same on both engines). */
export function networkingFromInspect(json: unknown): Pick<ContainerInfo, 'hostNetwork' | 'networks' | 'ports'> {
  // The engine's answer is read as untyped JSON: every level is checked before it is walked.
  const o = objectOrEmpty(json);
  const settings = objectOrEmpty(o.NetworkSettings);
  const networks: Record<string, string> = {};
  for (const [net, v] of Object.entries(objectOrEmpty(settings.Networks))) {
    const address = objectOrEmpty(v).IPAddress;
    const ip = typeof address === 'string' ? canonicalIp(address) : undefined;
    if (ip) networks[net] = ip.address;
  }
  const ports: PublishedPort[] = [];
  for (const [key, bindings] of Object.entries(objectOrEmpty(settings.Ports))) {
    const m = /^(\d+)\/(tcp|udp)$/.exec(key);
    if (!m || !Array.isArray(bindings)) continue;
    for (const b of bindings) {
      const { HostPort, HostIp } = objectOrEmpty(b);
      const publicPort = typeof HostPort === 'string' || typeof HostPort === 'number' ? Number(HostPort) : NaN;
      if (!Number.isInteger(publicPort) || publicPort <= 0 || publicPort > 65_535) continue;
      ports.push({ privatePort: Number(m[1]), publicPort, type: m[2] as Transport, ip: typeof HostIp === 'string' && HostIp !== '' ? HostIp : undefined });
    }
  }
  return { hostNetwork: objectOrEmpty(o.HostConfig).NetworkMode === 'host', networks, ports };
}

function objectOrEmpty(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** First 12 hex digits, as `docker ps` shows an id. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

/**
 * Where Sluice reaches `port` of a container, in this order: the host itself for host networking;
 * the container's address on `network` (or on its first network by name); a port it publishes on
 * the host. Returns a reason when none applies (e.g. `--network none` without published ports).
 */
export function containerTarget(c: ContainerInfo, port: number, transport: Transport, network?: string): HostPort | string {
  if (c.hostNetwork) return { host: '127.0.0.1', port };
  if (network !== undefined) {
    const ip = c.networks[network];
    if (ip) return { host: ip, port };
    return `container is not on network "${network}" (it is on: ${Object.keys(c.networks).join(', ') || 'none'})`;
  }
  const first = Object.keys(c.networks).sort()[0];
  if (first !== undefined) return { host: c.networks[first]!, port };
  const published = c.ports.find((p) => p.privatePort === port && p.type === transport);
  if (published) {
    const wildcard = published.ip === undefined || published.ip === '0.0.0.0' || published.ip === '::';
    return { host: wildcard ? '127.0.0.1' : published.ip!, port: published.publicPort };
  }
  return `container has no address Sluice can reach for ${transport} port ${port} (no host networking, no network address, not published); write the upstream as host:port`;
}
