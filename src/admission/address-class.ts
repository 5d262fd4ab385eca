import ipaddr from 'ipaddr.js';
import { parseCidr, type Cidr } from '../core/cidr.js';
import { CidrSet } from '../core/cidr-set.js';
import { embeddedIpv4 } from '../core/embedded-ipv4.js';
import { parseIpValue, type IpValue } from '../core/ip-value.js';

/**
 * The one classification of addresses that arrive from the network (peer sources, ICE
 * candidates, resolved names): every check that keeps Sluice from sending into the networks
 * around it asks this module. Classes, from most to least allowed:
 *
 *  - `public`: globally reachable unicast (IANA "Globally Reachable: True", or no special entry).
 *  - `loopback`: 127/8, ::1.
 *  - `private`: RFC 1918, CGNAT 100.64/10, 192.0.0/24, benchmarking 198.18/15 and 2001:2::/48,
 *    ULA fc00::/7, deprecated site-local fec0::/10, NAT64 local-use 64:ff9b:1::/48.
 *  - `link-local`: 169.254/16, fe80::/10, except the metadata addresses.
 *  - `reserved`: special-purpose space that is neither global nor a local network: documentation
 *    (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20), the deprecated 6to4
 *    relay anycast 192.88.99/24, 2001::/23 protocol assignments, ORCHIDv1, SRv6 SIDs 5f00::/16,
 *    the dummy addresses, and IPv6 outside 2000::/3 that no entry names (unallocated).
 *  - `metadata`: cloud instance metadata and host agents (METADATA below). Never allowed.
 *  - `unusable`: cannot be a unicast destination: "this network" 0/8, ::, multicast, 240/4,
 *    broadcast, the discard prefix 100::/64.
 *
 * The ranges are ipaddr.js's (`range()` names, its special-purpose tables), compiled once into a
 * CidrSet so that a check is one parse and a binary search; OVERRIDES adds the IANA entries
 * ipaddr.js lacks or lumps together, and the provider metadata addresses. The most specific
 * entry wins. IPv6 forms that embed an IPv4 address (NAT64, 6to4, compatible, Teredo) take the
 * most restrictive class of what they embed, so `64:ff9b::a00:1` is as private as 10.0.0.1.
 * test/admission/address-class.test.ts holds the IANA registries' entries as a table.
 */
export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'reserved' | 'metadata' | 'unusable';

/** Least to most restrictive: the worst of an address and what it embeds decides. */
const ORDER: readonly AddressClass[] = ['public', 'loopback', 'private', 'link-local', 'reserved', 'metadata', 'unusable'];

/** ipaddr.js range names; a name this table does not know (a newer ipaddr.js) counts as reserved. */
const RANGE_CLASS: Readonly<Record<string, AddressClass | null>> = {
  unicast: 'public',
  unspecified: 'unusable',
  broadcast: 'unusable',
  multicast: 'unusable',
  discard: 'unusable',
  linkLocal: 'link-local',
  loopback: 'loopback',
  private: 'private',
  carrierGradeNat: 'private',
  uniqueLocal: 'private',
  deprecatedSiteLocal: 'private',
  benchmarking: 'private',
  reserved: 'reserved',
  deprecatedOrchid: 'reserved',
  segmentRouting: 'reserved',
  as112: 'public',
  as112v6: 'public',
  amt: 'public',
  orchid2: 'public',
  droneRemoteIdProtocolEntityTags: 'public',
  // Carriers of an embedded IPv4 address: the embedded address decides (below).
  rfc6052: 'public',
  rfc6145: 'public',
  '6to4': 'public',
  teredo: 'public',
  // Canonical addresses are never mapped (canonicalIp makes them IPv4); left out of the table,
  // because an IPv6 entry covering ::ffff:0:0/96 would also match every IPv4 address.
  ipv4Mapped: null,
};

/**
 * Cloud instance metadata services and host agents, which hand out credentials to whoever asks
 * from the host: AWS/GCP/Azure/Oracle/DigitalOcean/Hetzner IMDS 169.254.169.254, AWS ECS task
 * metadata 169.254.170.2, Tencent 169.254.0.23, Azure WireServer 168.63.129.16, Alibaba
 * 100.100.100.200, AWS IMDS over IPv6 fd00:ec2::254, GCP over IPv6 fd20:ce::254.
 */
const METADATA: readonly string[] = [
  '169.254.169.254/32',
  '169.254.170.2/32',
  '169.254.0.23/32',
  '168.63.129.16/32',
  '100.100.100.200/32',
  'fd00:ec2::254/128',
  'fd20:ce::254/128',
];

/** IANA special-purpose entries ipaddr.js does not have, or classes it lumps together. */
const OVERRIDES: readonly (readonly [string, AddressClass])[] = [
  ['192.0.0.0/24', 'private'], //      IETF protocol assignments, DS-Lite 192.0.0.0/29, NAT64 discovery .170/.171
  ['192.0.0.8/32', 'reserved'], //     IPv4 dummy address (RFC 7600)
  ['192.0.0.9/32', 'public'], //       Port Control Protocol anycast (RFC 7723), globally reachable
  ['192.0.0.10/32', 'public'], //      TURN anycast (RFC 8155), globally reachable
  ['198.18.0.0/15', 'private'], //     benchmarking (RFC 2544), like 2001:2::/48
  ['240.0.0.0/4', 'unusable'], //      reserved for future use, never a destination
  ['64:ff9b:1::/48', 'private'], //    local-use IPv4/IPv6 translation (RFC 8215)
  ['100:0:0:1::/64', 'reserved'], //   dummy IPv6 prefix (RFC 9780)
  ['2001:1::1/128', 'public'], //      PCP anycast (RFC 7723)
  ['2001:1::2/128', 'public'], //      TURN anycast (RFC 8155)
  ['2001:1::3/128', 'public'], //      DNS-SD SRP anycast (RFC 9665)
  ...METADATA.map((m) => [m, 'metadata'] as const),
];

interface RangeTable {
  readonly [name: string]: [ipaddr.IPv4 | ipaddr.IPv6, number] | [ipaddr.IPv4 | ipaddr.IPv6, number][];
}

function compile(): { set: CidrSet; classOf: Map<Cidr, AddressClass> } {
  const entries: [Cidr, AddressClass][] = [];
  const add = (text: string, cls: AddressClass) => {
    const c = parseCidr(text);
    if (typeof c === 'string') throw new Error(`address-class: ${c}`);
    entries.push([c, cls]);
  };
  for (const proto of [ipaddr.IPv4.prototype, ipaddr.IPv6.prototype]) {
    const ranges = (proto as unknown as { SpecialRanges?: RangeTable }).SpecialRanges;
    if (!ranges) throw new Error('address-class: this ipaddr.js has no SpecialRanges table (the range() data this module compiles)');
    for (const [name, list] of Object.entries(ranges)) {
      const cls = name in RANGE_CLASS ? RANGE_CLASS[name]! : 'reserved';
      if (cls === null) continue;
      const subnets = Array.isArray(list[0]) ? (list as [ipaddr.IPv4 | ipaddr.IPv6, number][]) : [list as [ipaddr.IPv4 | ipaddr.IPv6, number]];
      for (const [addr, bits] of subnets) add(`${addr.toString()}/${bits}`, cls);
    }
  }
  // Later entries for the same network replace earlier ones: the overrides win.
  for (const [text, cls] of OVERRIDES) add(text, cls);
  const byText = new Map<string, [Cidr, AddressClass]>();
  for (const e of entries) byText.set(e[0].text, e);
  const classOf = new Map<Cidr, AddressClass>();
  for (const [c, cls] of byText.values()) classOf.set(c, cls);
  return { set: new CidrSet([...classOf.keys()]), classOf };
}

const TABLE = compile();

/** Class of one address value, without looking at what it embeds. */
function ownClass(ip: IpValue): AddressClass {
  const hit = TABLE.set.match(ip);
  if (hit) return TABLE.classOf.get(hit)!;
  // Global unicast IPv6 is 2000::/3; the rest of the space no entry names is unallocated.
  if (ip.family === 6 && ip.words[0]! >>> 29 !== 1) return 'reserved';
  return 'public';
}

/** Class of a canonical address (`canonicalIp` output); anything that is not an IP is `unusable`. */
export function classifyAddress(address: string): AddressClass {
  const ip = parseIpValue(address);
  if (!ip) return 'unusable';
  let worst = ownClass(ip);
  for (const e of embeddedIpv4(ip)) {
    const c = ownClass({ family: 4, words: [e.v4] });
    if (ORDER.indexOf(c) > ORDER.indexOf(worst)) worst = c;
  }
  return worst;
}

/** Classes a destination that comes from the network may be in; `metadata` and `unusable` never are. */
export type DestinationClass = 'public' | 'loopback' | 'private' | 'link-local' | 'reserved';

/** The class of `address` when `allow` does not admit it, else undefined. */
export function refusedClass(address: string, allow: readonly DestinationClass[]): AddressClass | undefined {
  const cls = classifyAddress(address);
  return (allow as readonly AddressClass[]).includes(cls) ? undefined : cls;
}
