import { canonicalIp } from '../core/address.js';
import { classifyAddress, type AddressClass } from '../admission/address-class.js';

/**
 * Which peers a udpexposer server answers. The server sends to addresses that arrive from the
 * network (every connectee's source, and the client's), so a forged source would make it a
 * pivot into the networks around it (threats-and-tests TH-8). The classes are those of
 * admission/address-class.ts (IANA special-purpose registries plus cloud metadata addresses);
 * a port outside 1-65535 or a text that is not an IP is `unusable`.
 *
 * The policy over those classes:
 *  - `public`: always answered.
 *  - `loopback`: opt-in (`allowLoopback`): a forged loopback source would make the server deliver
 *    traffic to services on its own host.
 *  - `private` and `link-local`: opt-in (`allowPrivate`).
 *  - `reserved`, `metadata`, `unusable`: never.
 */
export type PeerClass = AddressClass;

/** Class of an address as a socket reported it (any spelling); `unusable` when it is not an IP. */
export function classifyPeer(address: string, port: number): PeerClass {
  if (port <= 0 || port > 65535) return 'unusable';
  const ip = canonicalIp(address);
  if (!ip) return 'unusable';
  return classifyAddress(ip.address);
}

/** Decides per datagram whether its source may be answered. */
export type PeerPolicy = (address: string, port: number) => boolean;

export interface PeerPolicyOptions {
  /** Also answer private and link-local peers (never metadata or unusable ones). */
  readonly allowPrivate: boolean;
  /** Also answer loopback peers (127/8, ::1). */
  readonly allowLoopback: boolean;
}

export function peerPolicy(opts: PeerPolicyOptions): PeerPolicy {
  return (address, port) => {
    const c = classifyPeer(address, port);
    return c === 'public' || (opts.allowLoopback && c === 'loopback') || (opts.allowPrivate && (c === 'private' || c === 'link-local'));
  };
}

/**
 * The default for a server bound to `host`: private peers are expected when the operator bound
 * the socket to a private or link-local address itself; with a wildcard or public address they
 * are refused unless allowed explicitly.
 */
export function defaultAllowPrivate(host: string): boolean {
  const ip = canonicalIp(host);
  if (!ip) return false;
  const c = classifyPeer(ip.address, 1);
  return c === 'private' || c === 'link-local';
}

/** The same for loopback: a socket bound to a loopback address can only hear loopback peers. */
export function defaultAllowLoopback(host: string): boolean {
  const ip = canonicalIp(host);
  return ip !== undefined && classifyPeer(ip.address, 1) === 'loopback';
}
