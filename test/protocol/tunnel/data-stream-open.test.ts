import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { once } from 'node:events';
import {
  AGENT_DATA_ALPNS, dataConnAlpn, decodeControlFrame, encodeControlMessage, GATEWAY_ALPNS, TUNNEL_ALPN, TUNNEL_ALPN_DATA, TUNNEL_ALPN_TRUNK, trunkAlpn, type StreamOpen,
} from '../../../src/protocol/tunnel/index.js';
import { assertTunnelError } from './helpers.js';
import { makeTestCertificate } from './tls-pair.js';

/** STREAM_OPEN's data connection tail, and the ALPN that says both ends know data connections. */

const base: StreamOpen = {
  type: 'stream-open', streamId: 2, serviceId: 1,
  client: { address: '192.0.2.1', port: 40000, family: 4 }, server: { address: '198.51.100.2', port: 8080, family: 4 },
};

test('golden: STREAM_OPEN without the tail is the first layout; with it, a u64 counter follows', () => {
  const plain = '0000001520000000020001049c40c0000201041f90c6336402';
  assert.equal(encodeControlMessage(base).toString('hex'), plain);
  const withTail = '0000001d20000000020001049c40c0000201041f90c6336402' + '0000010203040506';
  assert.equal(encodeControlMessage({ ...base, dataConnection: 0x0102_0304_0506 }).toString('hex'), withTail);
  const d = decodeControlFrame(Buffer.from(withTail, 'hex'));
  assert.equal(d.kind === 'ok' && (d.message as StreamOpen).dataConnection, 0x0102_0304_0506);
  const p = decodeControlFrame(Buffer.from(plain, 'hex'));
  assert.equal(p.kind === 'ok' && 'dataConnection' in p.message, false);
  // A counter above 2^48 and a tail of another size are malformed.
  assertTunnelError(() => decodeControlFrame(Buffer.from('0000001d20000000020001049c40c0000201041f90c6336402' + '0001000000000000', 'hex')), 'malformed');
  assertTunnelError(() => decodeControlFrame(Buffer.from('0000001920000000020001049c40c0000201041f90c6336402' + '00000001', 'hex')), 'malformed');
  assertTunnelError(() => encodeControlMessage({ ...base, dataConnection: 2 ** 48 }), 'bad-value');
});

const creds = makeTestCertificate();

async function negotiated(server: string[], client: string[]): Promise<string | false | null> {
  const s = tls.createServer({ ...creds!, minVersion: 'TLSv1.3', ALPNProtocols: server });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const c = tls.connect({ host: '127.0.0.1', port: (s.address() as { port: number }).port, rejectUnauthorized: false, ALPNProtocols: client });
  await once(c, 'secureConnect');
  const got = c.alpnProtocol;
  c.destroy();
  s.close();
  return got;
}

test('ALPN: data connections only when both ends offer them; an earlier end on either side keeps the first protocol', { skip: creds ? false : 'no openssl' }, async () => {
  assert.equal(await negotiated([TUNNEL_ALPN_DATA, TUNNEL_ALPN], [TUNNEL_ALPN_DATA, TUNNEL_ALPN]), TUNNEL_ALPN_DATA);
  assert.equal(await negotiated([TUNNEL_ALPN_DATA, TUNNEL_ALPN], [TUNNEL_ALPN, TUNNEL_ALPN_DATA]), TUNNEL_ALPN_DATA, "the gateway's order wins");
  assert.equal(await negotiated([TUNNEL_ALPN_DATA, TUNNEL_ALPN], [TUNNEL_ALPN]), TUNNEL_ALPN, 'an earlier agent');
  assert.equal(await negotiated([TUNNEL_ALPN], [TUNNEL_ALPN_DATA, TUNNEL_ALPN]), TUNNEL_ALPN, 'an earlier gateway');
});

test("ALPN: this version's lists agree on data connections (READY and reuse); an end of the earlier data version (`+data`) or with them off agrees on the first protocol", { skip: creds ? false : 'no openssl' }, async () => {
  const earlier = ['sluice-tunnel/1+data', TUNNEL_ALPN];
  assert.equal(await negotiated([...GATEWAY_ALPNS], [...AGENT_DATA_ALPNS]), TUNNEL_ALPN_TRUNK, 'this version: trunks (and data connections)');
  const previous = [TUNNEL_ALPN_DATA, TUNNEL_ALPN];
  assert.equal(await negotiated([...GATEWAY_ALPNS], previous), TUNNEL_ALPN_DATA, 'an agent of the previous version: data connections');
  assert.equal(await negotiated(previous, [...AGENT_DATA_ALPNS]), TUNNEL_ALPN_DATA, 'a gateway of the previous version: data connections');
  assert.ok(dataConnAlpn(TUNNEL_ALPN_TRUNK) && trunkAlpn(TUNNEL_ALPN_TRUNK) && !trunkAlpn(TUNNEL_ALPN_DATA));
  assert.equal(await negotiated([...GATEWAY_ALPNS], earlier), TUNNEL_ALPN, 'an earlier agent');
  assert.equal(await negotiated(earlier, [...AGENT_DATA_ALPNS]), TUNNEL_ALPN, 'an earlier gateway');
  assert.equal(await negotiated([...GATEWAY_ALPNS], [TUNNEL_ALPN]), TUNNEL_ALPN, 'an agent with data connections off');
  assert.deepEqual([dataConnAlpn(TUNNEL_ALPN_DATA), dataConnAlpn('sluice-tunnel/1+data'), dataConnAlpn(TUNNEL_ALPN)], [true, false, false]);
});
