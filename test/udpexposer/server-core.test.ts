// The server role without sockets, on a ManualClock: wire behaviour (wire.json bytes), password
// handshake, anti-hijack (SPF-2), amplification (AMP-1/AMP-2) and the flaws Sluice changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeFrame, encodeReplyToken, encodeRequestToken, STATS_NONCE, verifyReplyToken,
} from '../../src/protocol/udpexposer/index.js';
import { peerPolicy } from '../../src/udpexposer/peer-policy.js';
import { vectorKey, wire } from '../protocol/udpexposer/helpers.js';
import { A, B, CLIENT, EVIL, MOVED, recordingServer } from './helpers.js';

const np = wire.no_password;
const pw = wire.password_mode;
const hex = (h: string) => Buffer.from(h, 'hex');
const initial = Buffer.from(pw.initial_request.token!, 'ascii');

/** Runs the password handshake for `peer` and returns what the server answered last. */
function handshake(s: ReturnType<typeof recordingServer>, peer: { address: string; port: number }) {
  s.core.handleDatagram(initial, peer.address, peer.port);
  const [retry] = s.take();
  const r = verifyReplyToken(retry!.bytes, vectorKey);
  assert.ok(r.ok && r.value.kind === 'retry', 'first answer is a Retry');
  s.core.handleDatagram(encodeRequestToken({ nonce: r.value.value }, vectorKey), peer.address, peer.port);
  return s.take();
}

test('no password: keepalive registers the client; frames match wire.json both ways', () => {
  const s = recordingServer();
  s.core.handleDatagram(Buffer.from(np.connectee_to_server_payload_ascii), A.address, A.port);
  assert.equal(s.core.counters.dropped['no-client'], 1, 'no client yet: dropped, no tag spent');
  s.core.handleDatagram(hex(np.keepalive_client_to_server_hex), CLIENT.address, CLIENT.port);
  assert.deepEqual(s.core.client, { ...CLIENT, authenticated: false });
  assert.equal(s.take().length, 0, 'a keepalive is never answered');

  s.core.handleDatagram(Buffer.from(np.connectee_to_server_payload_ascii), A.address, A.port);
  assert.deepEqual(s.take(), [{ bytes: hex(np.server_to_client_hex), ...CLIENT }]);

  s.core.handleDatagram(hex(np.client_to_server_hex), CLIENT.address, CLIENT.port);
  assert.deepEqual(s.take(), [{ bytes: Buffer.from(np.server_to_connectee_ascii), ...A }]);

  s.core.handleDatagram(hex(np.client_to_server_tag_only_hex), CLIENT.address, CLIENT.port);
  const [empty] = s.take();
  assert.equal(empty!.bytes.length, np.server_to_connectee_len);
});

test('no password: any empty datagram re-points the client (inherent in that mode; documented)', () => {
  const s = recordingServer();
  s.core.handleDatagram(Buffer.alloc(0), CLIENT.address, CLIENT.port);
  s.core.handleDatagram(Buffer.alloc(0), EVIL.address, EVIL.port);
  assert.deepEqual(s.core.client, { ...EVIL, authenticated: false });
  assert.equal(s.events.filter((e) => e.type === 'client-address').length, 2);
});

test('client frames: short ones and unknown tags are dropped', () => {
  const s = recordingServer();
  s.core.handleDatagram(Buffer.alloc(0), CLIENT.address, CLIENT.port);
  s.core.handleDatagram(Buffer.from([1]), CLIENT.address, CLIENT.port);
  s.core.handleDatagram(encodeFrame(9, Buffer.from('x')), CLIENT.address, CLIENT.port);
  assert.equal(s.core.counters.dropped['short-from-client'], 1);
  assert.equal(s.core.counters.dropped['unknown-tag'], 1);
  assert.equal(s.take().length, 0);
});

test('password: the real client\'s handshake (constant request, Retry, echo, Registered as in wire.json)', () => {
  const s = recordingServer({ key: vectorKey });
  const answer = handshake(s, CLIENT);
  assert.deepEqual(answer, [{ bytes: Buffer.from(pw.registered_reply.token!), ...CLIENT }]);
  assert.deepEqual(s.core.client, { ...CLIENT, authenticated: true });
  // lax mode: the current client's periodic constant token is answered with Registered
  s.core.handleDatagram(initial, CLIENT.address, CLIENT.port);
  assert.deepEqual(s.take(), [{ bytes: Buffer.from(pw.registered_reply.token!), ...CLIENT }]);
  // data flows with tags as in no-password mode
  s.core.handleDatagram(Buffer.from('helloA'), A.address, A.port);
  assert.deepEqual(s.take(), [{ bytes: hex(np.server_to_client_hex), ...CLIENT }]);
});

test('password: empty datagrams are data, never keepalives', () => {
  const s = recordingServer({ key: vectorKey });
  s.core.handleDatagram(Buffer.alloc(0), EVIL.address, EVIL.port);
  assert.equal(s.core.client, undefined);
  handshake(s, CLIENT);
  s.core.handleDatagram(Buffer.alloc(0), A.address, A.port);
  // udpexposer forwards it as a tag-only frame, which its client drops (protocols.md §1.3)
  assert.deepEqual(s.take(), [{ bytes: hex('0001'), ...CLIENT }]);
});

test('SPF-2: nothing unauthenticated moves the client in password mode', () => {
  const s = recordingServer({ key: vectorKey });
  handshake(s, CLIENT);
  const forged: Buffer[] = [
    Buffer.alloc(0), // udpexposer's no-password keepalive
    Buffer.from('garbage'),
    initial, // the constant, replayable token
    Buffer.from(pw.registered_reply.token!), // a server token sent the wrong way
    encodeRequestToken({ nonce: 12345n }, vectorKey), // signed, but not a value this server issued
    encodeRequestToken({ nonce: STATS_NONCE }, vectorKey),
    Buffer.from(`${pw.initial_request.token!.slice(0, -1)}A`), // bad MAC
  ];
  for (const buf of forged) s.core.handleDatagram(buf, EVIL.address, EVIL.port);
  // also from the client's own address: may not move it anywhere either
  for (const buf of forged) s.core.handleDatagram(buf, CLIENT.address, CLIENT.port);
  assert.deepEqual(s.core.client, { ...CLIENT, authenticated: true });
  assert.equal(s.core.counters.clientAddressChanges, 1);
  assert.equal(s.core.counters.statsRequests, 2, 'stats requests are counted, never answered');
});

test('password: a captured echo cannot be replayed, from anywhere', () => {
  const s = recordingServer({ key: vectorKey });
  s.core.handleDatagram(initial, CLIENT.address, CLIENT.port);
  const r = verifyReplyToken(s.take()[0]!.bytes, vectorKey);
  assert.ok(r.ok && r.value.kind === 'retry');
  const echo = encodeRequestToken({ nonce: r.value.value }, vectorKey);
  s.core.handleDatagram(echo, EVIL.address, EVIL.port); // wrong address: refused, gets its own Retry
  assert.equal(s.core.client, undefined);
  assert.equal(s.core.counters.echoesRefused.forged, 1);
  s.core.handleDatagram(echo, CLIENT.address, CLIENT.port);
  assert.deepEqual(s.core.client, { ...CLIENT, authenticated: true });
  s.take();
  // the client roams; an eavesdropper replays the old echo from (a spoof of) the old address
  handshake(s, MOVED);
  assert.deepEqual(s.core.client, { ...MOVED, authenticated: true });
  s.core.handleDatagram(echo, CLIENT.address, CLIENT.port);
  assert.deepEqual(s.core.client, { ...MOVED, authenticated: true });
  assert.equal(s.core.counters.echoesRefused.replayed, 1);
});

test('password: an echo older than 10 s gets a new Retry, as udpexposer does', () => {
  const s = recordingServer({ key: vectorKey });
  s.core.handleDatagram(initial, CLIENT.address, CLIENT.port);
  const r = verifyReplyToken(s.take()[0]!.bytes, vectorKey);
  assert.ok(r.ok && r.value.kind === 'retry');
  s.clock.advance(11_000);
  s.core.handleDatagram(encodeRequestToken({ nonce: r.value.value }, vectorKey), CLIENT.address, CLIENT.port);
  assert.equal(s.core.client, undefined);
  const again = verifyReplyToken(s.take()[0]!.bytes, vectorKey);
  assert.ok(again.ok && again.value.kind === 'retry' && again.value.value !== r.value.value);
});

test('password: a token signed with another key (a client with a wrong -P) is dropped, never forwarded as data', async () => {
  const { UdpexposerKey } = await import('../../src/protocol/udpexposer/key.js');
  const wrong = await UdpexposerKey.fromPassword('not-the-password');
  const s = recordingServer({ key: vectorKey });
  handshake(s, CLIENT);
  const keepalive = encodeRequestToken({ nonce: null }, wrong);
  for (let i = 0; i < 3; i++) s.core.handleDatagram(keepalive, A.address, A.port);
  assert.deepEqual(s.take(), [], 'nothing reaches the registered client, nothing goes back');
  assert.equal(s.core.counters.invalidTokens, 3);
  assert.equal(s.core.counters.toClient.datagrams, 0);
  assert.equal(s.core.table.size, 0, 'no connectee tag spent on it');
  const warned = s.events.filter((e) => e.type === 'bad-signature');
  assert.deepEqual(warned, [{ type: 'bad-signature', peer: A }], 'one event, not one per datagram');
  s.clock.advance(60_000);
  s.core.handleDatagram(keepalive, A.address, A.port);
  assert.equal(s.events.filter((e) => e.type === 'bad-signature').length, 2, 'again after a minute');
});

test('password: a malformed token-looking payload still falls through as connectee data (udpexposer compatible)', () => {
  const s = recordingServer({ key: vectorKey });
  handshake(s, CLIENT);
  const odd = Buffer.from('eyJhbGciOiJIUzI1NiJ9.not a token at all');
  s.core.handleDatagram(odd, A.address, A.port);
  assert.deepEqual(s.take(), [{ bytes: encodeFrame(1, odd), ...CLIENT }]);
  assert.equal(s.core.counters.invalidTokens, 1);
});

test('password: a wrong password never registers', async () => {
  const { UdpexposerKey } = await import('../../src/protocol/udpexposer/key.js');
  const wrong = await UdpexposerKey.fromPassword('not-the-password');
  const s = recordingServer({ key: vectorKey });
  s.core.handleDatagram(encodeRequestToken({ nonce: null }, wrong), CLIENT.address, CLIENT.port);
  assert.equal(s.core.client, undefined);
  assert.equal(s.core.counters.invalidTokens, 1);
  assert.equal(s.take().length, 0, 'no Retry for a token that does not verify (and no client to forward it to)');
});

test('AMP-1: what the server itself sends to an unverified source is at most 3x what it got', () => {
  const s = recordingServer({ key: vectorKey });
  const payloads: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('x'),
    Buffer.alloc(2046, 0x41),
    Buffer.alloc(3000, 0x41),
    initial,
    encodeRequestToken({ nonce: 2n ** 63n }, vectorKey),
    encodeRequestToken({ nonce: STATS_NONCE }, vectorKey),
    Buffer.from(pw.retry_reply.token!),
    Buffer.from(`${pw.initial_request.token!}x`),
  ];
  let received = 0;
  for (const p of payloads) {
    s.core.handleDatagram(p, EVIL.address, EVIL.port);
    received += p.length;
    const back = s.take().filter((x) => x.address === EVIL.address).reduce((n, x) => n + x.bytes.length, 0);
    assert.ok(back <= 3 * p.length, `${back} bytes back for ${p.length}`);
  }
  assert.ok(received > 0);
  // and a Retry in particular: at most 105 bytes (20 digits) for an 84-byte request
  s.core.handleDatagram(initial, EVIL.address, EVIL.port);
  const [retry] = s.take();
  assert.equal(initial.length, 84);
  assert.ok(retry!.bytes.length <= 105 && retry!.bytes.length / initial.length < 1.26);
});

test('what the server originates stays within 3x and counts bytes in and out (no option raises it)', () => {
  const s = recordingServer({ key: vectorKey });
  s.core.handleDatagram(initial, EVIL.address, EVIL.port);
  const [retry] = s.take();
  const u = s.core.counters.unverifiedReplies;
  assert.deepEqual(u, { bytesIn: initial.length, bytesOut: retry!.bytes.length, replies: 1, refused: 0 });
  assert.ok(u.bytesOut <= 3 * u.bytesIn);
});

/** No password, a client, and a service that answers every connectee datagram with `answer` bytes. */
function spoofSetup(opts: Parameters<typeof recordingServer>[0], answer: number) {
  const s = recordingServer(opts);
  s.core.handleDatagram(Buffer.alloc(0), CLIENT.address, CLIENT.port);
  let toVictim = 0;
  /** One spoofed datagram of `bytes` and the service's answer; returns the bytes the victim got so far. */
  const spoof = (bytes: number) => {
    s.core.handleDatagram(Buffer.alloc(bytes, 1), A.address, A.port); // "from" A: the victim; the attacker never sees a reply
    const tag = s.take().find((x) => x.address === CLIENT.address)!.bytes.readUInt16BE(0);
    for (let sent = 0; sent < answer; sent += 1000) s.core.handleDatagram(encodeFrame(tag, Buffer.alloc(Math.min(1000, answer - sent), 2)), CLIENT.address, CLIENT.port);
    toVictim += s.take().filter((x) => x.address === A.address && x.port === A.port).reduce((n, x) => n + x.bytes.length, 0);
    return toVictim;
  };
  return { s, spoof };
}

test('AMP-2: two or three spoofed 1-byte datagrams 300 ms apart get at most the reply budget, never the 50,000 bytes the service answers', () => {
  for (const n of [2, 3]) {
    const { s, spoof } = spoofSetup({ replyBudget: { ratio: 64, windowMs: 10_000 } }, 25_000);
    let toVictim = 0;
    for (let i = 0; i < n; i++) {
      toVictim = spoof(1);
      s.clock.advance(300);
    }
    assert.equal(toVictim, 0, `${n} x 1 byte buys 64 x ${n} bytes: no 1,000-byte reply fits`);
    assert.equal(s.core.counters.dropped['reply-budget'], n * 25);
  }
  // the default budget, with requests the size of a real one
  const { s, spoof } = spoofSetup({}, 25_000);
  spoof(60);
  s.clock.advance(300);
  const got = spoof(60);
  assert.ok(got <= 64 * 120, `${got} bytes for 120`);
  assert.equal(got, 7000, 'whole 1,000-byte replies up to 64 x 120 = 7,680');
  assert.equal(s.core.counters.dropped['reply-budget'], 50 - 7);
});

test('reply budget: the window slides (one to two windows), and spending stays within ratio x received', () => {
  const { s, spoof } = spoofSetup({ replyBudget: { ratio: 10, windowMs: 1000 } }, 5000);
  s.clock.advance(1000 - (s.clock.now() % 1000)); // start at a window boundary
  assert.equal(spoof(100), 1000, '10 x 100');
  s.clock.advance(1000); // next window: the previous one still counts, and so does what it spent
  assert.equal(spoof(100), 2000, '10 x 200 over the two windows');
  s.clock.advance(1000); // the first window is gone: 100 in and 1,000 out remain in view
  assert.equal(spoof(200), 4000, '10 x (100 + 200) - 1,000');
  s.clock.advance(2000); // both windows gone: nothing banked
  s.core.handleDatagram(encodeFrame(1, Buffer.alloc(10)), CLIENT.address, CLIENT.port);
  assert.equal(s.take().length, 0, 'no credit left after two silent windows');
});

test('replyBudget: a ratio under 1 or an empty window is refused at construction', () => {
  assert.throws(() => recordingServer({ replyBudget: { ratio: 0.5, windowMs: 1000 } }), /replyBudget needs ratio >= 1/);
  assert.throws(() => recordingServer({ replyBudget: { ratio: 8, windowMs: 0 } }), /windowMs > 0/);
});

test("replyBudget: 'off' relays everything (a download-heavy flow the operator lifted the budget for)", () => {
  const { s, spoof } = spoofSetup({ replyBudget: 'off' }, 50_000);
  assert.equal(spoof(60), 50_000);
  assert.equal(s.core.counters.dropped['reply-budget'], 0);
});

test('payloads over 2046 bytes are dropped, not cut short', () => {
  const s = recordingServer();
  s.core.handleDatagram(Buffer.alloc(0), CLIENT.address, CLIENT.port);
  s.core.handleDatagram(Buffer.alloc(2047), A.address, A.port);
  s.core.handleDatagram(Buffer.alloc(2046), A.address, A.port);
  const out = s.take();
  assert.equal(out.length, 1);
  assert.equal(out[0]!.bytes.length, 2048);
  assert.equal(s.core.counters.dropped['too-big'], 1);
});

test('sources outside the peer policy are neither answered nor forwarded', () => {
  const s = recordingServer({ key: vectorKey });
  handshake(s, CLIENT);
  for (const src of ['10.0.0.5', '169.254.169.254', '::ffff:192.168.0.1', '0.0.0.0', '224.0.0.1']) {
    s.core.handleDatagram(initial, src, 53);
    s.core.handleDatagram(Buffer.from('data'), src, 53);
  }
  assert.equal(s.take().length, 0);
  assert.equal(s.core.counters.dropped['peer-denied'], 10);
  const lax = recordingServer({ peerPolicy: peerPolicy({ allowPrivate: true, allowLoopback: false }) });
  lax.core.handleDatagram(Buffer.alloc(0), '10.0.0.5', 53);
  assert.deepEqual(lax.core.client, { address: '10.0.0.5', port: 53, authenticated: false });
});

test('a dual-stack socket\'s mapped addresses are the same peers as plain IPv4', () => {
  const s = recordingServer();
  s.core.handleDatagram(Buffer.alloc(0), `::ffff:${CLIENT.address}`, CLIENT.port);
  s.core.handleDatagram(Buffer.from('hi'), `::ffff:${A.address}`, A.port);
  const [toClient] = s.take();
  assert.equal(toClient!.address, `::ffff:${CLIENT.address}`, 'replies go to the address exactly as reported');
  s.core.handleDatagram(encodeFrame(1, Buffer.from('yo')), CLIENT.address, CLIENT.port);
  assert.deepEqual(s.take(), [{ bytes: Buffer.from('yo'), address: `::ffff:${A.address}`, port: A.port }]);
  assert.deepEqual(s.core.client, { ...CLIENT, authenticated: false });
});

test('a flood of new sources does not evict connectees that are talking', () => {
  const s = recordingServer({ maxClients: 2 });
  s.core.handleDatagram(Buffer.alloc(0), CLIENT.address, CLIENT.port);
  s.core.handleDatagram(Buffer.from('a'), A.address, A.port);
  s.core.handleDatagram(Buffer.from('b'), B.address, B.port);
  for (let i = 0; i < 100; i++) s.core.handleDatagram(Buffer.from('flood'), '1.0.0.99', 10_000 + i);
  assert.equal(s.core.counters.dropped['table-full'], 100);
  assert.equal(s.core.table.byTag(1)?.port, A.port);
  assert.equal(s.core.table.byTag(2)?.port, B.port);
  s.clock.advance(30_000);
  s.core.handleDatagram(Buffer.from('new'), '1.0.0.99', 20_000);
  assert.equal(s.core.counters.connecteesEvicted, 1, 'after 30 s of silence the oldest may go');
  const added = s.events.filter((e) => e.type === 'connectee-added');
  assert.equal(added.length, 3);
  const last = added.at(-1);
  assert.ok(last?.type === 'connectee-added' && last.tag === 3 && last.evicted?.tag === 1);
});

test('Retry tokens carry values above 2^53 as digits (cookie high bits are the time)', () => {
  const s = recordingServer({ key: vectorKey });
  s.core.handleDatagram(initial, CLIENT.address, CLIENT.port);
  const text = s.take()[0]!.bytes.toString('ascii');
  const claims = Buffer.from(text.split('.')[1]!, 'base64url').toString();
  const digits = /^\{"Retry":(\d+)\}$/.exec(claims)?.[1];
  assert.ok(digits !== undefined && BigInt(digits) > BigInt(Number.MAX_SAFE_INTEGER));
  assert.deepEqual(encodeReplyToken({ kind: 'retry', value: BigInt(digits) }, vectorKey).toString('ascii'), text);
});

test('handleDatagramV4 (a source as an IPv4 number) sends the same bytes and counts the same as handleDatagram', () => {
  const v4 = (ip: string) => ip.split('.').reduce((n, x) => n * 256 + Number(x), 0);
  for (const key of [undefined, vectorKey]) {
    const text = recordingServer({ key });
    const num = recordingServer({ key });
    if (key) {
      handshake(text, CLIENT);
      // the numeric path's handshake goes through the full path too (tokens never take the fast one)
      num.core.handleDatagramV4(initial, v4(CLIENT.address), CLIENT.port);
      const r = verifyReplyToken(num.take()[0]!.bytes, vectorKey);
      assert.ok(r.ok && r.value.kind === 'retry');
      num.core.handleDatagramV4(encodeRequestToken({ nonce: r.value.value }, vectorKey), v4(CLIENT.address), CLIENT.port);
      num.take();
    }
    const script: [Buffer, { address: string; port: number }][] = [
      [Buffer.alloc(0), CLIENT], // a keepalive without -P, data with it
      [Buffer.from('hello'), A],
      [encodeFrame(1, Buffer.from('back to A')), CLIENT],
      [Buffer.from('x'), B],
      [Buffer.from('again'), A],
      [encodeFrame(2, Buffer.from('to B')), CLIENT],
      [encodeFrame(9, Buffer.from('unknown tag')), CLIENT],
      [Buffer.from([1]), CLIENT], // shorter than a tag
      [Buffer.alloc(3000), A], // too big
      [Buffer.alloc(1), EVIL],
    ];
    for (const [buf, p] of script) {
      text.core.handleDatagram(buf, p.address, p.port);
      num.core.handleDatagramV4(buf, v4(p.address), p.port);
    }
    assert.ok(text.sent.length >= 5, 'the script relays both ways');
    assert.deepEqual(num.sent, text.sent);
    assert.deepEqual(num.core.counters, text.core.counters);
    assert.deepEqual([...num.core.table.entries()].map((c) => [c.tag, c.address, c.port]), [...text.core.table.entries()].map((c) => [c.tag, c.address, c.port]));
  }
});
