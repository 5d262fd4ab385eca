import net from 'node:net';
import { canonicalIp } from '../core/address.js';
import { embeddedIpv4 } from '../admission/acl/embedded-ipv4.js';
import { formatIpv4, parseIpValue } from '../admission/acl/ip-value.js';

/**
 * Which peers a udpexposer server answers. The server sends to addresses that arrive from the
 * network (every connectee's source, and the client's), so a forged source would make it a
 * pivot into the networks around it (threats-and-tests TH-8). Classes, most to least allowed:
 *
 *  - `public`: everything below does not match.
 *  - `loopback`: 127/8, ::1. Opt-in like private (`allowLoopback`): a forged loopback source
 *    would make the server deliver traffic to services on its own host.
 *  - `private`: RFC 1918, CGNAT 100.64/10, 192.0.0/24, benchmarking 198.18/15, ULA fc00::/7.
 *  - `link-local`: 169.254/16, fe80::/10, except the metadata addresses.
 *  - `metadata`: 169.254.169.254, fd00:ec2::254 (cloud instance metadata). Never allowed.
 *  - `unusable`: port 0, unspecified, "this network" 0/8, multicast, 240/4 and broadcast. Never.
 *
 * IPv6 forms that embed an IPv4 address (NAT64, 6to4, compatible, Teredo) take the most
 * restrictive class of what they embed, so `64:ff9b::a00:1` is as private as 10.0.0.1.
 */
export type PeerClass = 'public' | 'loopback' | 'private' | 'link-local' | 'metadata' | 'unusable';

const ORDER: readonly PeerClass[] = ['public', 'loopback', 'private', 'link-local', 'metadata', 'unusable'];

function list(entries: readonly [string, number, 'ipv4' | 'ipv6'][]): net.BlockList {
  const b = new net.BlockList();
  for (const [a, p, f] of entries) b.addSubnet(a, p, f);
  return b;
}

const LISTS: readonly [PeerClass, net.BlockList][] = [
  ['unusable', list([['0.0.0.0', 8, 'ipv4'], ['224.0.0.0', 4, 'ipv4'], ['240.0.0.0', 4, 'ipv4'], ['::', 128, 'ipv6'], ['ff00::', 8, 'ipv6']])],
  ['metadata', list([['169.254.169.254', 32, 'ipv4'], ['fd00:ec2::254', 128, 'ipv6']])],
  ['link-local', list([['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']])],
  ['private', list([
    ['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['100.64.0.0', 10, 'ipv4'],
    ['192.0.0.0', 24, 'ipv4'], ['198.18.0.0', 15, 'ipv4'], ['fc00::', 7, 'ipv6'],
  ])],
  ['loopback', list([['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']])],
];

/** Class of an address as a socket reported it (any spelling); `unusable` when it is not an IP. */
export function classifyPeer(address: string, port: number): PeerClass {
  if (port <= 0 || port > 65535) return 'unusable';
  const ip = canonicalIp(address);
  if (!ip) return 'unusable';
  let worst = classOf(ip.address, ip.family === 4 ? 'ipv4' : 'ipv6');
  if (ip.family === 6) {
    const v = parseIpValue(ip.address);
    for (const e of v ? embeddedIpv4(v) : []) {
      const c = classOf(formatIpv4(e.v4), 'ipv4');
      if (ORDER.indexOf(c) > ORDER.indexOf(worst)) worst = c;
    }
  }
  return worst;
}

function classOf(address: string, family: 'ipv4' | 'ipv6'): PeerClass {
  for (const [c, b] of LISTS) if (b.check(address, family)) return c;
  return 'public';
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
