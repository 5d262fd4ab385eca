import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../../src/core/address.js';
import { isSluiceError } from '../../src/core/errors.js';
import { TurnClient } from '../../src/turn/turn-client.js';
import { TurnError } from '../../src/turn/turn-error.js';
import { decodeChannelData, encodeChannelData } from '../../src/turn/channel-data.js';
import {
  ChannelNumber, Data, ErrorCode, Lifetime, Nonce, PasswordAlgorithm, PasswordAlgorithmAttr, PasswordAlgorithms, Realm,
  StunMethod, Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress, attr, decodeStunDatagram, encodeStunMessage,
  getAttribute, longTermKey, randomTransactionId, stunMessage, verifyIntegrity, NONCE_COOKIE,
  type AttributeEntry, type DecodedStunMessage,
} from '../../src/protocol/stun/index.js';
import { ManualClock } from '../helpers/manual-clock.js';

/**
 * The TURN client against a scripted server on a hand-moved clock: the RFC 8656 timing and the
 * long-term credential rules, without sockets. coturn interop is in turn-coturn.test.ts.
 */

const SERVER = { address: '192.0.2.1', port: 3478 };
const RELAYED: Endpoint = { address: '192.0.2.1', port: 50_000, family: 4 };
const MAPPED: Endpoint = { address: '198.51.100.7', port: 40_000, family: 4 };
const PEER: Endpoint = { address: '203.0.113.9', port: 7000, family: 4 };
const REALM = 'example.test';

type Reply = (req: DecodedStunMessage) => Buffer | undefined;

/** A fake server: every request the client sends is decoded and answered by `reply`, synchronously. */
function setup(opts: { reply?: Reply; channels?: boolean } = {}) {
  const clock = new ManualClock();
  const requests: DecodedStunMessage[] = [];
  const raw: Buffer[] = [];
  const received: { data: string; from: Endpoint }[] = [];
  const closed: (Error | undefined)[] = [];
  let reply: Reply = opts.reply ?? standardReply();
  const turn = new TurnClient(
    { server: SERVER, username: 'user', password: 'pass', channels: opts.channels },
    {
      clock,
      send: (buf) => {
        raw.push(buf);
        const m = buf[0]! <= 3 ? decodeStunDatagram(buf) : undefined;
        if (m?.cls !== 'request') return;
        requests.push(m);
        const out = reply(m);
        if (out) queueMicrotask(() => turn.handleDatagram(out, SERVER));
      },
    },
  );
  turn.setReceiver({ onRelayDatagram: (b, from) => received.push({ data: b.toString(), from }), onRelayClosed: (e) => closed.push(e) });
  return { clock, turn, requests, raw, received, closed, setReply: (r: Reply) => (reply = r) };
}

const KEY = longTermKey('user', REALM, 'pass');

function respond(req: DecodedStunMessage, cls: 'success' | 'error', attrs: AttributeEntry[], sign = true): Buffer {
  return encodeStunMessage(stunMessage(cls, req.method, req.transactionId, attrs), { integrityKey: sign ? KEY : undefined, fingerprint: true });
}

function unauthorized(req: DecodedStunMessage, nonce = 'n1', code = 401): Buffer {
  return respond(req, 'error', [attr(ErrorCode, { code, reason: code === 401 ? 'Unauthorized' : 'Stale Nonce' }), attr(Realm, REALM), attr(Nonce, nonce)], false);
}

/** 401 for unsigned requests, success for signed ones with the current nonce. */
function standardReply(state = { nonce: 'n1', lifetime: 600 }): Reply {
  return (req) => {
    if (getAttribute(req, Nonce) !== state.nonce || verifyIntegrity(req, KEY) !== 'ok') return unauthorized(req, state.nonce, getAttribute(req, Nonce) ? 438 : 401);
    switch (req.method) {
      case StunMethod.Allocate:
        return respond(req, 'success', [attr(XorRelayedAddress, RELAYED), attr(XorMappedAddress, MAPPED), attr(Lifetime, state.lifetime)]);
      case StunMethod.Refresh:
        return respond(req, 'success', [attr(Lifetime, getAttribute(req, Lifetime) ?? 600)]);
      default:
        return respond(req, 'success', []);
    }
  };
}

const flush = () => new Promise((r) => setImmediate(r));
const methods = (reqs: DecodedStunMessage[]) => reqs.map((r) => r.method);

test('ChannelData: framing, optional padding, and what is not ChannelData', () => {
  const f = encodeChannelData(0x4001, Buffer.from('abcde'));
  assert.equal(f.toString('hex'), '40010005' + Buffer.from('abcde').toString('hex'));
  assert.equal(encodeChannelData(0x4001, Buffer.from('abcde'), true).length, 12);
  assert.deepEqual(decodeChannelData(encodeChannelData(0x4fff, Buffer.from('abcde'), true))?.data.toString(), 'abcde');
  assert.equal(decodeChannelData(Buffer.from('4001000a00', 'hex')), undefined, 'length past the end');
  assert.equal(decodeChannelData(Buffer.from('40010000ffffffff', 'hex')), undefined, 'more than 3 padding bytes');
  assert.equal(decodeChannelData(Buffer.from('50000000', 'hex')), undefined, '0x5000 is no longer a channel');
  assert.throws(() => encodeChannelData(0x3fff, Buffer.alloc(0)), (e) => isSluiceError(e, 'SLUICE_ERR_TURN'));
});

test('Allocate: unsigned first, then signed with a new transaction id after 401', async () => {
  const { turn, requests } = setup();
  const a = await turn.allocate();
  assert.deepEqual(a, { relayed: RELAYED, mapped: MAPPED });
  assert.equal(requests.length, 2);
  assert.equal(requests[0]!.messageIntegrity, undefined);
  assert.equal(getAttribute(requests[1]!, Username), 'user');
  assert.equal(getAttribute(requests[1]!, Realm), REALM);
  assert.equal(verifyIntegrity(requests[1]!, KEY), 'ok');
  assert.notDeepEqual(requests[0]!.transactionId, requests[1]!.transactionId);
  assert.equal(requests[1]!.fingerprint, 'valid');
});

test('a success response with a wrong MESSAGE-INTEGRITY is ignored as if never received', async () => {
  const { clock, turn, requests, setReply } = setup();
  const good = standardReply();
  setReply((req) => {
    const out = good(req);
    if (req.messageIntegrity && requests.length === 2) {
      return encodeStunMessage(stunMessage('success', req.method, req.transactionId, [attr(XorRelayedAddress, RELAYED)]), { integrityKey: Buffer.from('wrong'), fingerprint: true });
    }
    return out;
  });
  const p = turn.allocate();
  await flush();
  assert.equal(turn.state, 'allocating');
  clock.advance(500); // the retransmission gets a genuine answer
  assert.deepEqual(await p, { relayed: RELAYED, mapped: MAPPED });
});

test('errors other than 401/438 reject with TurnError and its status', async () => {
  const { turn, setReply } = setup();
  const std = standardReply();
  setReply((req) => (req.messageIntegrity ? respond(req, 'error', [attr(ErrorCode, { code: 486, reason: 'Allocation Quota Reached' })]) : std(req)));
  const err = await turn.allocate().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof TurnError);
  assert.equal(err.status, 486);
  assert.equal(err.code, 'SLUICE_ERR_TURN');
  assert.equal(turn.state, 'failed');
});

test('438 Stale Nonce: retried with the new nonce; the key stays', async () => {
  const state = { nonce: 'n1', lifetime: 600 };
  const { turn, requests, setReply } = setup();
  setReply(standardReply(state));
  await turn.allocate();
  state.nonce = 'n2';
  await turn.createPermission([PEER]);
  const last3 = requests.slice(-2);
  assert.deepEqual(methods(last3), [StunMethod.CreatePermission, StunMethod.CreatePermission]);
  assert.equal(getAttribute(last3[0]!, Nonce), 'n1');
  assert.equal(getAttribute(last3[1]!, Nonce), 'n2');
  assert.equal(verifyIntegrity(last3[1]!, KEY), 'ok');
});

test('a 401 on a signed request with the same nonce means wrong credentials', async () => {
  const { turn, requests, setReply } = setup();
  setReply((req) => unauthorized(req, 'n1'));
  const err = await turn.allocate().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof TurnError && err.status === 401);
  assert.equal(requests.length, 2, 'one unsigned, one signed, then give up');
});

test('RFC 8489 algorithm negotiation: SHA-256 is chosen when the server offers it', async () => {
  const nonce = `${NONCE_COOKIE}AAAAabcd`;
  const algs = [{ algorithm: PasswordAlgorithm.Sha256, parameters: Buffer.alloc(0) }, { algorithm: PasswordAlgorithm.Md5, parameters: Buffer.alloc(0) }];
  const key256 = longTermKey('user', REALM, 'pass', 'sha256');
  const { turn, requests, setReply } = setup();
  setReply((req) => {
    if (!req.messageIntegritySha256) {
      return encodeStunMessage(stunMessage('error', req.method, req.transactionId, [
        attr(ErrorCode, { code: 401, reason: 'Unauthorized' }), attr(Realm, REALM), attr(Nonce, nonce), attr(PasswordAlgorithms, algs),
      ]));
    }
    return encodeStunMessage(stunMessage('success', req.method, req.transactionId, [attr(XorRelayedAddress, RELAYED)]), { integrityKey: key256, integrity: 'sha256' });
  });
  await turn.allocate();
  const signed = requests[1]!;
  assert.equal(verifyIntegrity(signed, key256, 'sha256'), 'ok');
  assert.equal(getAttribute(signed, PasswordAlgorithmAttr)?.algorithm, PasswordAlgorithm.Sha256);
  assert.equal(getAttribute(signed, PasswordAlgorithms)?.length, 2);
});

test('refresh at lifetime - 60 s; a failed refresh closes the relay with the error', async () => {
  const state = { nonce: 'n1', lifetime: 300 };
  const { clock, turn, requests, closed, setReply } = setup();
  setReply(standardReply(state));
  await turn.allocate();
  clock.advance(239_999);
  assert.equal(requests.filter((r) => r.method === StunMethod.Refresh).length, 0);
  clock.advance(1);
  await flush();
  const refresh = requests.at(-1)!;
  assert.equal(refresh.method, StunMethod.Refresh);
  assert.equal(getAttribute(refresh, Lifetime), 600);
  // The next refresh is refused: the allocation is gone.
  setReply((req) => respond(req, 'error', [attr(ErrorCode, { code: 437, reason: 'Allocation Mismatch' })]));
  clock.advance(540_000);
  await flush();
  await flush();
  assert.equal(turn.state, 'failed');
  assert.equal(closed.length, 1);
  assert.ok(closed[0] instanceof TurnError && closed[0].status === 437);
  assert.equal(clock.pendingTimers, 0, 'no timer left behind');
});

test('send: permission first (datagrams queued), indications, then a channel; data both ways', async () => {
  const { turn, requests, raw, received } = setup();
  await turn.allocate();
  turn.send(Buffer.from('one'), PEER);
  turn.send(Buffer.from('two'), PEER);
  await flush();
  assert.deepEqual(methods(requests.slice(2)), [StunMethod.CreatePermission, StunMethod.ChannelBind]);
  assert.deepEqual(getAttribute(requests[2]!, XorPeerAddress), { ...PEER, port: 0 });
  const sends = raw.filter((b) => b[0]! <= 3).map((b) => decodeStunDatagram(b)!).filter((m) => m.method === StunMethod.Send);
  assert.deepEqual(sends.map((m) => getAttribute(m, Data)?.toString()), ['one', 'two']);
  assert.ok(sends.every((m) => m.cls === 'indication'));
  assert.equal(getAttribute(requests[3]!, ChannelNumber), 0x4000);
  turn.send(Buffer.from('three'), PEER);
  const cd = decodeChannelData(raw.at(-1)!);
  assert.equal(cd?.channel, 0x4000);
  assert.equal(cd?.data.toString(), 'three');

  turn.handleDatagram(encodeChannelData(0x4000, Buffer.from('back')), SERVER);
  const dataInd = stunMessage('indication', StunMethod.Data, randomTransactionId(), [attr(XorPeerAddress, PEER), attr(Data, Buffer.from('ind'))]);
  turn.handleDatagram(encodeStunMessage(dataInd), SERVER);
  assert.equal(turn.handleDatagram(encodeChannelData(0x4000, Buffer.from('spoof')), { address: '192.0.2.99', port: 3478 }), false);
  turn.handleDatagram(encodeChannelData(0x4005, Buffer.from('unbound')), SERVER);
  assert.deepEqual(received, [{ data: 'back', from: PEER }, { data: 'ind', from: PEER }]);
});

test('a refused permission drops the queue and is not asked for again for 30 s', async () => {
  const { clock, turn, requests, setReply } = setup({ channels: false });
  const std = standardReply();
  setReply((req) => (req.method === StunMethod.CreatePermission && req.messageIntegrity ? respond(req, 'error', [attr(ErrorCode, { code: 403, reason: 'Forbidden' })]) : std(req)));
  await turn.allocate();
  turn.send(Buffer.from('a'), PEER);
  await flush();
  await flush();
  assert.equal(turn.counters.dropped, 1);
  turn.send(Buffer.from('b'), PEER);
  assert.equal(requests.filter((r) => r.method === StunMethod.CreatePermission).length, 1);
  clock.advance(30_000);
  turn.send(Buffer.from('c'), PEER);
  assert.equal(requests.filter((r) => r.method === StunMethod.CreatePermission).length, 2);
});

test('close(): Refresh with LIFETIME 0, every timer stopped, then sends are dropped', async () => {
  const { clock, turn, requests, closed } = setup();
  await turn.allocate();
  turn.send(Buffer.from('x'), PEER);
  await flush();
  await turn.close();
  const last = requests.at(-1)!;
  assert.equal(last.method, StunMethod.Refresh);
  assert.equal(getAttribute(last, Lifetime), 0);
  assert.equal(turn.state, 'closed');
  assert.deepEqual(closed, [undefined]);
  assert.equal(clock.pendingTimers, 0);
  turn.send(Buffer.from('y'), PEER);
  assert.equal(turn.counters.dropped, 1);
  await assert.rejects(turn.allocate(), (e) => isSluiceError(e, 'SLUICE_ERR_CLOSED'));
});

test('an unanswered Allocate times out with SLUICE_ERR_STUN_TIMEOUT', async () => {
  const { clock, turn } = setup({ reply: () => undefined });
  const p = turn.allocate();
  clock.advance(39_500);
  await assert.rejects(p, (e) => isSluiceError(e, 'SLUICE_ERR_STUN_TIMEOUT'));
  assert.equal(turn.state, 'failed');
});
