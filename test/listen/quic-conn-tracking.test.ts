import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { QuicDemux, type QuicMember } from '../../src/listen/quic-demux.js';
import { MAX_ADDRESSES_PER_CONN } from '../../src/listen/quic-conns.js';
import { QUIC_V1, QUIC_V2 } from '../../src/protocol/quic/initial-keys.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { clientHelloMessage } from '../protocol/tls/hello-builder.js';
import { cryptoFrame, sealInitial } from '../protocol/quic/initial-builder.js';

/* QUIC connection tracking on a shared UDP address (docs/sni.md, "Connection IDs"): constructed packets, no sockets. */

/** A route that records `<address>:<port> <first bytes as hex>` of what reaches it. */
function member(sni?: string[]) {
  const got: string[] = [];
  const m: QuicMember = {
    config: sni ? { match: { sni } } : {},
    receiver: { onDatagram: (buf, address, port) => void got.push(`${address}:${port} ${buf.subarray(0, 12).toString('hex')}`), onSendError: () => {} },
  };
  return { m, got };
}

function setup(withDefault = false) {
  const clock = new ManualClock();
  const events = new EventStream();
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => void seen.push(e));
  const demux = new QuicDemux('udp://192.0.2.100:443', { clock, events, pinIdleMs: () => 30_000 });
  const alpha = member(['alpha.test']);
  const beta = member(['beta.test']);
  const fallback = member();
  demux.join(alpha.m);
  demux.join(beta.m);
  if (withDefault) demux.join(fallback.m);
  const rejected = () => seen.flatMap((e) => (e.type === 'session-rejected' ? [[e.client.port, e.reason, e.detail]] : []));
  return { clock, demux, alpha, beta, fallback, rejected };
}

const cid = (byte: number, n = 8) => Buffer.alloc(n, byte);

/** A client's first Initial for `name` with DCID `dcid` and SCID `scid`. */
function initial(name: string, dcid: Buffer, scid: Buffer, version = QUIC_V1): Buffer {
  const frame = cryptoFrame(0, clientHelloMessage({ serverName: name }));
  return sealInitial({ version, dcid, scid, packetNumber: 0, payload: Buffer.concat([frame, Buffer.alloc(1100 - frame.length)]) });
}

/** A long header of `type` (v1: 0 Initial, 1 0-RTT, 2 Handshake, 3 Retry) with these IDs and an opaque body. */
function longHeader(type: number, dcid: Buffer, scid: Buffer, version = QUIC_V1): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt32BE(version);
  return Buffer.concat([Buffer.from([0xc0 | (type << 4)]), v, Buffer.from([dcid.length]), dcid, Buffer.from([scid.length]), scid, Buffer.from([0x40, 0x20]), Buffer.alloc(32, 0xee)]);
}

/** A 1-RTT packet to the connection ID `dcid`. */
const short = (dcid: Buffer) => Buffer.concat([Buffer.from([0x41]), dcid, Buffer.alloc(24, 0x11)]);

const hexOf = (b: Buffer) => b.subarray(0, 12).toString('hex');

test('a second connection from the same address with a new DCID and another name gets its own route; short and long headers follow their connection by ID', () => {
  const { demux, alpha, beta } = setup();
  const [ca, sa, cb, sb] = [cid(0xa1), cid(0xa2, 4), cid(0xb1), cid(0xb2, 5)];
  const ia = initial('alpha.test', ca, Buffer.from([0xa0]));
  demux.onDatagram(ia, '198.51.100.7', 5000);
  demux.learnReply(longHeader(0, Buffer.from([0xa0]), sa), '198.51.100.7', 5000); // the server's Initial: its SCID is alpha's
  const ib = initial('beta.test', cb, Buffer.from([0xb0]), QUIC_V2);
  demux.onDatagram(ib, '198.51.100.7', 5000);
  demux.learnReply(longHeader(1, Buffer.from([0xb0]), sb, QUIC_V2), '198.51.100.7', 5000); // v2 Initial type is 1
  assert.deepEqual(alpha.got, [`198.51.100.7:5000 ${hexOf(ia)}`]);
  assert.deepEqual(beta.got, [`198.51.100.7:5000 ${hexOf(ib)}`]);
  assert.equal(demux.pins, 1, 'one address, two connections');

  const packets = [short(sa), short(sb), longHeader(2, sa, Buffer.from([0xa0])), longHeader(2, sb, Buffer.from([0xb0])), initial('alpha.test', ca, Buffer.from([0xa0]))];
  for (const p of packets) demux.onDatagram(p, '198.51.100.7', 5000);
  assert.deepEqual(alpha.got.slice(1).map((g) => g.split(' ')[1]), [packets[0], packets[2], packets[4]].map(hexOf), 'alpha: its short header, Handshake and Initial retransmit');
  assert.deepEqual(beta.got.slice(1).map((g) => g.split(' ')[1]), [packets[1], packets[3]].map(hexOf));
  // A short header with no known ID goes to the address's latest connection.
  demux.onDatagram(short(cid(0x77)), '198.51.100.7', 5000);
  assert.equal(beta.got.length, 4);
  demux.close();
});

test('an Initial with an unknown DCID that does not open with its own keys stays with the address\'s connection (the client\'s Initial after the server\'s reply)', () => {
  const { demux, alpha, beta, rejected } = setup();
  demux.onDatagram(initial('alpha.test', cid(1), Buffer.from([1])), '198.51.100.7', 5000);
  const damaged = initial('beta.test', cid(2), Buffer.from([2]));
  damaged[damaged.length - 20]! ^= 0xff;
  demux.onDatagram(damaged, '198.51.100.7', 5000);
  assert.deepEqual([alpha.got.length, beta.got.length], [2, 0]);
  assert.deepEqual(rejected(), []);
  demux.close();
});

test('a known connection ID from a new client address follows its connection (NAT rebinding), long or short header, up to the per-connection bound; the old address keeps its pin', () => {
  const { demux, alpha, beta, rejected } = setup();
  const [ca, sa] = [cid(0xa1), cid(0xa2, 4)];
  demux.onDatagram(initial('alpha.test', ca, Buffer.from([0xa0])), '198.51.100.7', 5000);
  // Before the server answered: an Initial retransmit from a new port follows the client's first DCID.
  const again = initial('alpha.test', ca, Buffer.from([0xa0]));
  demux.onDatagram(again, '198.51.100.7', 5001);
  demux.learnReply(longHeader(0, Buffer.from([0xa0]), sa), '198.51.100.7', 5000);
  // A Handshake packet to the server's ID from a new address, then a short header from yet another.
  demux.onDatagram(longHeader(2, sa, Buffer.from([0xa0])), '203.0.113.9', 6000);
  demux.onDatagram(short(sa), '203.0.113.9', 6001);
  assert.deepEqual(alpha.got.map((g) => g.split(' ')[0]), ['198.51.100.7:5000', '198.51.100.7:5001', '203.0.113.9:6000', '203.0.113.9:6001']);
  assert.equal(MAX_ADDRESSES_PER_CONN, 4);
  // A fifth address is not followed: a short header from an address never seen is not QUIC to start with.
  demux.onDatagram(short(sa), '203.0.113.9', 6002);
  assert.equal(alpha.got.length, 4);
  assert.deepEqual(rejected(), [[6002, 'client-hello-invalid', 'quic short-header']]);
  // The first address still reaches alpha; a new address's later short headers follow its pin.
  demux.onDatagram(short(cid(0x55)), '198.51.100.7', 5000);
  demux.onDatagram(short(cid(0x55)), '203.0.113.9', 6001);
  assert.deepEqual([alpha.got.length, beta.got.length], [6, 0]);
  demux.close();
});

test('connection IDs are forgotten with their last address (idle) and when their route leaves', () => {
  const { clock, demux, alpha, rejected } = setup();
  demux.onDatagram(initial('alpha.test', cid(0xa1), Buffer.from([0xa0])), '198.51.100.7', 5000);
  clock.advance(31_000);
  demux.onDatagram(longHeader(2, cid(0xa1), Buffer.from([0xa0])), '203.0.113.9', 6000);
  assert.equal(alpha.got.length, 1);
  assert.deepEqual(rejected(), [[6000, 'client-hello-invalid', 'quic not-initial']]);
  demux.onDatagram(initial('alpha.test', cid(0xa3), Buffer.from([0xa0])), '198.51.100.7', 5000);
  assert.equal(alpha.got.length, 2);
  demux.leave(alpha.m);
  assert.equal(demux.pins, 0);
  demux.close();
});

test('versions: an unknown version from a new client is refused and counted (or taken by the default); from a pinned address it follows the address; the client\'s v1 retry after Version Negotiation routes by its name', () => {
  {
    const { demux, alpha, rejected } = setup();
    demux.onDatagram(longHeader(0, cid(1), cid(2), 0x1a2a3a4a), '198.51.100.7', 5000); // a greased version
    demux.onDatagram(longHeader(0, cid(1), cid(2), 0), '198.51.100.8', 5000); // version 0 (Version Negotiation) from a client
    assert.deepEqual(rejected(), [[5000, 'client-hello-invalid', 'quic unsupported-version'], [5000, 'client-hello-invalid', 'quic unsupported-version']]);
    assert.equal(alpha.got.length, 0);
    // Pinned: an unknown version follows the address (the server answers it).
    demux.onDatagram(initial('alpha.test', cid(3), Buffer.from([3])), '198.51.100.9', 5000);
    demux.onDatagram(longHeader(0, cid(4), cid(5), 0x1a2a3a4a), '198.51.100.9', 5000);
    assert.equal(alpha.got.length, 2);
    demux.close();
  }
  {
    const { demux, alpha, fallback, rejected } = setup(true);
    const unknown = longHeader(0, cid(1), cid(2), 0xff00001d); // a draft version
    demux.onDatagram(unknown, '198.51.100.7', 5000);
    assert.deepEqual(fallback.got, [`198.51.100.7:5000 ${hexOf(unknown)}`], 'the default route takes it (its server sends Version Negotiation)');
    // The server's Version Negotiation passes back untouched and teaches nothing.
    demux.learnReply(longHeader(0, cid(2), cid(1), 0), '198.51.100.7', 5000);
    const retry = initial('alpha.test', cid(6), cid(2));
    demux.onDatagram(retry, '198.51.100.7', 5000);
    assert.deepEqual(alpha.got, [`198.51.100.7:5000 ${hexOf(retry)}`], 'the v1 attempt routes by its name, not by the address');
    assert.deepEqual(rejected(), []);
    demux.close();
  }
});

test('a Retry\'s new server ID is learned: the client\'s next Initial (keys of the Retry\'s ID) stays on its connection', () => {
  const { demux, alpha, beta } = setup();
  demux.onDatagram(initial('alpha.test', cid(0xa1), Buffer.from([0xa0])), '198.51.100.7', 5000);
  const retryId = cid(0xa9);
  demux.learnReply(longHeader(3, Buffer.from([0xa0]), retryId), '198.51.100.7', 5000);
  const next = initial('alpha.test', retryId, Buffer.from([0xa0]));
  demux.onDatagram(next, '198.51.100.7', 5000);
  assert.deepEqual([alpha.got.length, beta.got.length], [2, 0]);
  demux.close();
});

test('a new connection from a pinned address whose name has no route is refused and counted; the address keeps its connection', () => {
  const { demux, alpha, rejected } = setup();
  demux.onDatagram(initial('alpha.test', cid(1), Buffer.from([1])), '198.51.100.7', 5000);
  demux.onDatagram(initial('gamma.test', cid(2), Buffer.from([2])), '198.51.100.7', 5000);
  assert.deepEqual(rejected(), [[5000, 'no-route-for-name', 'name gamma.test']]);
  demux.onDatagram(short(cid(9)), '198.51.100.7', 5000);
  assert.equal(alpha.got.length, 2);
  demux.close();
});
