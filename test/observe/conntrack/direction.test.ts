import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../../src/core/errors.js';
import { compileDirection, parseEventLine } from '../../../src/observe/conntrack/index.js';
import { captured } from './captured-lines.js';

const ev = (line: string) => parseEventLine(line);

test('local networks: opened towards a local address is ingress, opened from one is egress', () => {
  const dir = compileDirection({ localNetworks: ['10.77.0.1', 'fd77::1/128'] });
  assert.equal(dir(ev(captured.tcpIngressNew)), 'ingress');
  assert.equal(dir(ev(captured.icmpIngressFlushed)), 'ingress');
  assert.equal(dir(ev(captured.tcp6IngressFlushed)), 'ingress');
  assert.equal(dir(ev(captured.udpEgressNew)), 'egress');
  assert.equal(dir(ev(captured.icmp6EgressNew)), 'egress');
});

test('both ends local or both remote: skipped by default, or the configured direction', () => {
  const both = compileDirection({ localNetworks: ['10.77.0.0/24'] });
  assert.equal(both(ev(captured.tcpIngressNew)), undefined);
  const neither = compileDirection({ localNetworks: ['192.0.2.0/24'] });
  assert.equal(neither(ev(captured.tcpIngressNew)), undefined);
  assert.equal(compileDirection({ localNetworks: [], unknownDirection: 'egress' })(ev(captured.tcpIngressNew)), 'egress');
  assert.equal(compileDirection({ localNetworks: [], unknownDirection: 'skip' })(ev(captured.tcpIngressNew)), undefined);
});

test('NAT: the reply tuple reveals a local server behind DNAT and this host behind SNAT', () => {
  // Port forward on this host: the client dialled 203.0.113.1:443, the server 10.0.0.5 answers.
  const dnat = ev('[NEW] ipv4 2 tcp 6 120 SYN_SENT src=198.51.100.7 dst=203.0.113.1 sport=5000 dport=443 [UNREPLIED] src=10.0.0.5 dst=198.51.100.7 sport=443 dport=5000 id=1');
  // Masquerade: 10.0.0.5 goes out; the reply comes back to the host's public 203.0.113.1.
  const snat = ev('[NEW] ipv4 2 udp 17 30 src=10.0.0.5 dst=198.51.100.7 sport=5000 dport=53 [UNREPLIED] src=198.51.100.7 dst=203.0.113.1 sport=53 dport=5000 id=2');
  const lan = compileDirection({ localNetworks: ['10.0.0.0/24'] });
  assert.equal(lan(dnat), 'ingress');
  assert.equal(lan(snat), 'egress');
  const publicOnly = compileDirection({ localNetworks: ['203.0.113.1'] });
  assert.equal(publicOnly(dnat), 'ingress');
  assert.equal(publicOnly(snat), 'egress');
  // The captured DNAT (port 8000 forwarded to 7000 on the same host).
  assert.equal(compileDirection({ localNetworks: ['10.77.0.1'] })(ev(captured.tcpDnatNew)), 'ingress');
});

test('marks decide before networks; the mask is applied first; an unknown mark falls back to networks', () => {
  const dir = compileDirection({ localNetworks: ['10.77.0.1'], marks: { ingress: 0x10, egress: 0x20, mask: 0xf0 } });
  assert.equal(dir(ev(captured.udpEgressMarkedNew)), 'ingress', 'mark 16 is the ingress mark, whatever the addresses say');
  const withLowBits = ev(captured.udpEgressMarkedNew.replace('mark=16', 'mark=37'));
  assert.equal(dir(withLowBits), 'egress', '37 & 0xf0 = 0x20');
  const other = ev(captured.udpEgressMarkedNew.replace('mark=16', 'mark=64'));
  assert.equal(dir(other), 'egress', 'unknown mark: the networks decide');
});

test('bad config: every problem named with its key, as SLUICE_ERR_CONFIG_INVALID', () => {
  assert.throws(
    () => compileDirection({ localNetworks: ['10.0.0.1/24', 'nonsense', '10.0.0.0/8'], marks: { ingress: 1, egress: 1, mask: -1 } }),
    (err: unknown) => {
      assert.ok(isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID'));
      assert.match(err.message, /localNetworks\[0\]/);
      assert.match(err.message, /localNetworks\[1\]/);
      assert.doesNotMatch(err.message, /localNetworks\[2\]/);
      assert.match(err.message, /marks\.mask/);
      assert.match(err.message, /ingress and egress must differ/);
      return true;
    },
  );
});
