import { test } from 'node:test';
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { classifyAddress, type AddressClass } from '../../src/admission/address-class.js';
import { classifyPeer } from '../../src/udpexposer/peer-policy.js';

/**
 * The IANA IPv4 Special-Purpose Address Registry (iana-ipv4-special-registry), every entry, with
 * the class Sluice gives it and addresses inside it to check (first, last, and more where a
 * narrower entry sits inside). "Globally Reachable: True" entries are public.
 */
const IPV4: readonly [string, string, AddressClass, readonly string[]][] = [
  ['0.0.0.0/8', 'This network (RFC 791)', 'unusable', ['0.0.0.1', '0.255.255.255']],
  ['0.0.0.0/32', 'This host on this network (RFC 1122)', 'unusable', ['0.0.0.0']],
  ['10.0.0.0/8', 'Private-Use (RFC 1918)', 'private', ['10.0.0.0', '10.255.255.255']],
  ['100.64.0.0/10', 'Shared Address Space (RFC 6598)', 'private', ['100.64.0.0', '100.127.255.255']],
  ['127.0.0.0/8', 'Loopback (RFC 1122)', 'loopback', ['127.0.0.1', '127.255.255.254']],
  ['169.254.0.0/16', 'Link Local (RFC 3927)', 'link-local', ['169.254.0.1', '169.254.255.254']],
  ['172.16.0.0/12', 'Private-Use (RFC 1918)', 'private', ['172.16.0.0', '172.31.255.255']],
  ['192.0.0.0/24', 'IETF Protocol Assignments (RFC 6890)', 'private', ['192.0.0.11', '192.0.0.255']],
  ['192.0.0.0/29', 'IPv4 Service Continuity Prefix (RFC 7335)', 'private', ['192.0.0.0', '192.0.0.7']],
  ['192.0.0.8/32', 'IPv4 dummy address (RFC 7600)', 'reserved', ['192.0.0.8']],
  ['192.0.0.9/32', 'Port Control Protocol Anycast (RFC 7723)', 'public', ['192.0.0.9']],
  ['192.0.0.10/32', 'Traversal Using Relays around NAT Anycast (RFC 8155)', 'public', ['192.0.0.10']],
  ['192.0.0.170/32', 'NAT64/DNS64 Discovery (RFC 7050)', 'private', ['192.0.0.170']],
  ['192.0.0.171/32', 'NAT64/DNS64 Discovery (RFC 7050)', 'private', ['192.0.0.171']],
  ['192.0.2.0/24', 'Documentation TEST-NET-1 (RFC 5737)', 'reserved', ['192.0.2.0', '192.0.2.255']],
  ['192.31.196.0/24', 'AS112-v4 (RFC 7535)', 'public', ['192.31.196.1']],
  ['192.52.193.0/24', 'AMT (RFC 7450)', 'public', ['192.52.193.1']],
  ['192.88.99.0/24', 'Deprecated 6to4 Relay Anycast (RFC 7526)', 'reserved', ['192.88.99.0', '192.88.99.1', '192.88.99.255']],
  ['192.88.99.2/32', '6a44-relay anycast address (RFC 6751)', 'reserved', ['192.88.99.2']],
  ['192.168.0.0/16', 'Private-Use (RFC 1918)', 'private', ['192.168.0.0', '192.168.255.255']],
  ['192.175.48.0/24', 'Direct Delegation AS112 Service (RFC 7534)', 'public', ['192.175.48.1']],
  ['198.18.0.0/15', 'Benchmarking (RFC 2544)', 'private', ['198.18.0.0', '198.19.255.255']],
  ['198.51.100.0/24', 'Documentation TEST-NET-2 (RFC 5737)', 'reserved', ['198.51.100.0', '198.51.100.255']],
  ['203.0.113.0/24', 'Documentation TEST-NET-3 (RFC 5737)', 'reserved', ['203.0.113.0', '203.0.113.255']],
  ['240.0.0.0/4', 'Reserved (RFC 1112)', 'unusable', ['240.0.0.0', '255.255.255.254']],
  ['255.255.255.255/32', 'Limited Broadcast (RFC 8190)', 'unusable', ['255.255.255.255']],
];

/** The IANA IPv6 Special-Purpose Address Registry (iana-ipv6-special-registry), every entry. */
const IPV6: readonly [string, string, AddressClass, readonly string[]][] = [
  ['::1/128', 'Loopback Address (RFC 4291)', 'loopback', ['::1']],
  ['::/128', 'Unspecified Address (RFC 4291)', 'unusable', ['::']],
  ['::ffff:0:0/96', 'IPv4-mapped Address (RFC 4291): the IPv4 address decides', 'private', ['::ffff:10.0.0.1']],
  ['64:ff9b::/96', 'IPv4-IPv6 Translat. (RFC 6052): the embedded IPv4 decides', 'public', ['64:ff9b::101:101']],
  ['64:ff9b:1::/48', 'IPv4-IPv6 Translat. local-use (RFC 8215)', 'private', ['64:ff9b:1:0:100::101:101', '64:ff9b:1:ffff:ff00::101:101']],
  ['100::/64', 'Discard-Only Address Block (RFC 6666)', 'unusable', ['100::', '100::ffff:ffff:ffff:ffff']],
  ['100:0:0:1::/64', 'Dummy IPv6 Prefix (RFC 9780)', 'reserved', ['100:0:0:1::', '100:0:0:1:ffff:ffff:ffff:ffff']],
  ['2001::/23', 'IETF Protocol Assignments (RFC 2928)', 'reserved', ['2001:100::', '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:1::4']],
  ['2001::/32', 'TEREDO (RFC 4380): the client IPv4 decides', 'public', ['2001:0:4136:e378:8000:63bf:fefe:fefe']],
  ['2001:1::1/128', 'Port Control Protocol Anycast (RFC 7723)', 'public', ['2001:1::1']],
  ['2001:1::2/128', 'Traversal Using Relays around NAT Anycast (RFC 8155)', 'public', ['2001:1::2']],
  ['2001:1::3/128', 'DNS-SD Service Registration Protocol Anycast (RFC 9665)', 'public', ['2001:1::3']],
  ['2001:2::/48', 'Benchmarking (RFC 5180)', 'private', ['2001:2::', '2001:2:0:ffff:ffff:ffff:ffff:ffff']],
  ['2001:3::/32', 'AMT (RFC 7450)', 'public', ['2001:3::1']],
  ['2001:4:112::/48', 'AS112-v6 (RFC 7535)', 'public', ['2001:4:112::1']],
  ['2001:10::/28', 'Deprecated ORCHID (RFC 4843)', 'reserved', ['2001:10::1', '2001:1f:ffff::1']],
  ['2001:20::/28', 'ORCHIDv2 (RFC 7343)', 'public', ['2001:20::1']],
  ['2001:30::/28', 'Drone Remote ID Protocol Entity Tags (RFC 9374)', 'public', ['2001:30::1']],
  ['2001:db8::/32', 'Documentation (RFC 3849)', 'reserved', ['2001:db8::', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['2002::/16', '6to4 (RFC 3056): the embedded IPv4 decides', 'public', ['2002:101:101::1']],
  ['2620:4f:8000::/48', 'Direct Delegation AS112 Service (RFC 7534)', 'public', ['2620:4f:8000::1']],
  ['3fff::/20', 'Documentation (RFC 9637)', 'reserved', ['3fff::', '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['5f00::/16', 'Segment Routing (SRv6) SIDs (RFC 9602)', 'reserved', ['5f00::1', '5f00:ffff::1']],
  ['fc00::/7', 'Unique-Local (RFC 4193)', 'private', ['fc00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['fe80::/10', 'Link-Local Unicast (RFC 4291)', 'link-local', ['fe80::1', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
];

/** From the address-space registries, not the special-purpose ones, and the cloud metadata addresses. */
const OTHERS: readonly [string, string, AddressClass, readonly string[]][] = [
  ['224.0.0.0/4', 'IPv4 multicast (RFC 5771)', 'unusable', ['224.0.0.1', '239.255.255.255']],
  ['ff00::/8', 'IPv6 multicast (RFC 4291)', 'unusable', ['ff02::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['fec0::/10', 'Deprecated site-local (RFC 3879)', 'private', ['fec0::1', 'feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
  ['4000::/2', 'IPv6 space outside 2000::/3 (unallocated)', 'reserved', ['4000::1', '8000::1', '1::1']],
  ['169.254.169.254/32', 'AWS/GCP/Azure/Oracle instance metadata', 'metadata', ['169.254.169.254']],
  ['169.254.170.2/32', 'AWS ECS task metadata', 'metadata', ['169.254.170.2']],
  ['169.254.0.23/32', 'Tencent Cloud metadata', 'metadata', ['169.254.0.23']],
  ['168.63.129.16/32', 'Azure WireServer', 'metadata', ['168.63.129.16']],
  ['100.100.100.200/32', 'Alibaba Cloud metadata', 'metadata', ['100.100.100.200']],
  ['fd00:ec2::254/128', 'AWS instance metadata over IPv6', 'metadata', ['fd00:ec2::254']],
  ['fd20:ce::254/128', 'GCP metadata over IPv6', 'metadata', ['fd20:ce::254']],
  ['public', 'ordinary global unicast', 'public', ['1.1.1.1', '8.8.8.8', '223.255.255.255', '2606:4700::1111', '2a00:1450::1']],
];

for (const [block, name, want, samples] of [...IPV4, ...IPV6, ...OTHERS]) {
  test(`${block} ${name} is ${want}`, () => {
    for (const s of samples) assert.equal(classifyPeer(s, 1), want, s);
  });
}

test('embedded IPv4 (NAT64, 6to4, Teredo, compatible) takes the most restrictive class of what it embeds', () => {
  assert.equal(classifyAddress('64:ff9b::7f00:1'), 'loopback');
  assert.equal(classifyAddress('64:ff9b::a9fe:a9fe'), 'metadata');
  assert.equal(classifyAddress('64:ff9b::a83f:8110'), 'metadata', 'Azure WireServer over NAT64');
  assert.equal(classifyAddress('2002:a00:1::1'), 'private');
  assert.equal(classifyAddress('2002:c058:6301::1'), 'reserved', '6to4 of the deprecated relay anycast');
  assert.equal(classifyAddress('2001:0:4136:e378:8000:63bf:f5ff:fffe'), 'private', 'Teredo client 10.0.0.1');
  assert.equal(classifyAddress('::7f00:1'), 'reserved', 'IPv4-compatible 127.0.0.1: ::/96 lies outside 2000::/3, stricter than loopback');
  assert.equal(classifyAddress('::a9fe:a9fe'), 'metadata', 'IPv4-compatible 169.254.169.254');
  assert.equal(classifyAddress('64:ff9b:1:0:100::a9fe:a9fe'), 'metadata', 'NAT64 local-use /96 placement');
  assert.equal(classifyAddress('64:ff9b:1::a9fe:a9fe'), 'unusable', 'NAT64 local-use: every placement is checked; the /48 one reads 0.0.0.0');
  assert.equal(classifyAddress('::ffff:0:a00:1'), 'private', 'IPv4-translated 10.0.0.1');
});

test('every ipaddr.js range agrees with the table where the IANA registries do not say otherwise', () => {
  // Spot-check that the compiled table follows ipaddr.js's own range() for plain members.
  const plain: [string, AddressClass][] = [
    ['10.1.1.1', 'private'], ['172.20.0.1', 'private'], ['100.70.0.1', 'private'], ['169.254.9.9', 'link-local'],
    ['fd12::1', 'private'], ['fe80::9', 'link-local'], ['100::1', 'unusable'], ['2001:3::9', 'public'],
  ];
  for (const [a, want] of plain) {
    assert.ok(ipaddr.parse(a).range() !== 'unicast', `${a} is special for ipaddr.js`);
    assert.equal(classifyAddress(a), want, a);
  }
});

test('texts that are not canonical IPs are unusable (non-standard IPv4 spellings never reach a dial as literals)', () => {
  for (const s of ['2130706433', '0x7f.1', '0177.0.0.1', '127.1', 'localhost', '']) assert.equal(classifyPeer(s, 1), 'unusable', s);
  assert.equal(classifyPeer('fe80::1%lo', 1), 'link-local');
});
