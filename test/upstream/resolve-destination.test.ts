import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { tcpServer } from '../helpers/net.js';
import { isSluiceError } from '../../src/core/errors.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { NETWORK_DESTINATIONS, resolveDestination, systemResolver, type Resolver } from '../../src/upstream/direct/resolve.js';

const PUBLIC = '93.184.215.14';

/** A resolver that answers `answers[i]` on its i-th call (the last one from then on) and counts calls. */
function scripted(answers: readonly (readonly string[])[]) {
  let calls = 0;
  const resolve: Resolver = async () => {
    const a = answers[Math.min(calls, answers.length - 1)]!;
    calls++;
    return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { resolve, calls: () => calls };
}

test('DNS rebinding: a name that answers public then loopback is resolved once per dial and dialed at the checked address; the loopback answer is refused before any socket', async (t) => {
  let upstreamAccepts = 0;
  const up = await tcpServer(t, (s) => {
    upstreamAccepts++;
    s.end();
  });
  const dialed: string[] = [];
  const r = scripted([[PUBLIC], ['127.0.0.1']]);
  const dialer = new DirectStreamDialer(r.resolve, {
    policy: NETWORK_DESTINATIONS,
    // Stands in for the public host: records the address the dialer gives the socket, then
    // connects to a local listener so the dial completes.
    connect: (o) => {
      dialed.push((o as net.TcpNetConnectOpts).host!);
      return net.connect({ ...(o as net.TcpNetConnectOpts), host: '127.0.0.1', port: up.port });
    },
  });
  const signal = new AbortController().signal;
  const first = await dialer.dial({ host: 'rebind.test', port: 80 }, { signal, timeoutMs: 2000 });
  first.stream.destroy();
  assert.equal(first.remote.address, PUBLIC);
  assert.deepEqual(dialed, [PUBLIC], 'the socket was given the checked address, never the name');
  assert.equal(r.calls(), 1, 'one resolution for one dial: nothing between check and connect');

  await assert.rejects(dialer.dial({ host: 'rebind.test', port: 80 }, { signal, timeoutMs: 2000 }), (e) => isSluiceError(e, 'SLUICE_ERR_DESTINATION_DENIED') && /127\.0\.0\.1 is loopback/.test(e.message));
  assert.deepEqual(dialed, [PUBLIC], 'no socket toward loopback');
  assert.equal(r.calls(), 2);
  assert.equal(upstreamAccepts, 1);
});

test('an answer with any disallowed address is refused whole (not filtered), naming the address and its class', async () => {
  for (const [answer, bad, cls] of [
    [[PUBLIC, '127.0.0.1'], '127.0.0.1', 'loopback'],
    [['10.0.0.5', PUBLIC], '10.0.0.5', 'private'],
    [[PUBLIC, '::ffff:169.254.169.254'], '169.254.169.254', 'metadata'],
    [['2606:4700::1111', 'fd00:ec2::254'], 'fd00:ec2::254', 'metadata'],
    [['168.63.129.16'], '168.63.129.16', 'metadata'],
    [['64:ff9b::7f00:1'], '64:ff9b::7f00:1', 'loopback'],
    [['192.88.99.1'], '192.88.99.1', 'reserved'],
  ] as const) {
    const r = scripted([answer]);
    await assert.rejects(resolveDestination({ host: 'mixed.test', port: 53 }, r.resolve, NETWORK_DESTINATIONS), (e) => {
      assert.ok(isSluiceError(e, 'SLUICE_ERR_DESTINATION_DENIED'), String(e));
      assert.match(e.message, new RegExp(`${bad.replace(/\./g, '\\.')} is ${cls}`));
      return true;
    });
  }
  // Literals take the same path without a lookup.
  const never: Resolver = async () => assert.fail('a literal needs no lookup');
  await assert.rejects(resolveDestination({ host: '::1', port: 1 }, never, NETWORK_DESTINATIONS), /::1 is loopback/);
  assert.equal((await resolveDestination({ host: PUBLIC, port: 1 }, never, NETWORK_DESTINATIONS)).address, PUBLIC);
  // A wider policy admits what it names, never metadata.
  const lan = ['public', 'private'] as const;
  assert.equal((await resolveDestination({ host: 'lan.test', port: 1 }, scripted([['10.0.0.5']]).resolve, lan)).address, '10.0.0.5');
  await assert.rejects(resolveDestination({ host: 'lan.test', port: 1 }, scripted([['169.254.169.254']]).resolve, lan), /metadata/);
  // Trusted (config) hosts are pinned but not classified.
  assert.equal((await resolveDestination({ host: 'cfg.test', port: 1 }, scripted([['127.0.0.1']]).resolve, 'trusted')).address, '127.0.0.1');
});

test('spellings the system resolver turns into loopback (decimal, short, localhost) are classified after resolution', async () => {
  for (const host of ['2130706433', '127.1', '0x7f.0.0.1', 'localhost']) {
    await assert.rejects(resolveDestination({ host, port: 80 }, systemResolver, NETWORK_DESTINATIONS), (e) => {
      assert.ok(isSluiceError(e, 'SLUICE_ERR_DESTINATION_DENIED'), `${host}: ${String(e)}`);
      assert.match(e.message, /is (loopback|reserved)/);
      return true;
    });
  }
});
