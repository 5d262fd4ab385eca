import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import {
  ErrorCode, StunMethod, XorMappedAddress, attr, decodeStunDatagram, encodeStunMessage, randomTransactionId, stunMessage,
  type DecodedStunMessage,
} from '../../src/protocol/stun/index.js';
import { StunTimeoutError, StunTransactionTable, type StunPeer } from '../../src/turn/stun-transaction.js';
import { ManualClock } from '../helpers/manual-clock.js';

const SERVER: StunPeer = { address: '192.0.2.10', port: 3478 };

function setup(defaults = {}) {
  const clock = new ManualClock();
  const sent: { at: number; buf: Buffer; port: number; address: string }[] = [];
  const table = new StunTransactionTable({ clock, send: (buf, port, address) => void sent.push({ at: clock.now(), buf, port, address }) }, defaults);
  return { clock, sent, table };
}

function bindingRequest(tid = randomTransactionId()): { tid: Buffer; bytes: Buffer } {
  return { tid, bytes: encodeStunMessage(stunMessage('request', StunMethod.Binding, tid), { fingerprint: true }) };
}

function response(tid: Buffer, cls: 'success' | 'error' = 'success'): DecodedStunMessage {
  const attrs = cls === 'success' ? [attr(XorMappedAddress, { address: '198.51.100.1', port: 4000, family: 4 as const })] : [attr(ErrorCode, { code: 401, reason: 'Unauthorized' })];
  return decodeStunDatagram(encodeStunMessage(stunMessage(cls, StunMethod.Binding, tid, attrs)))!;
}

/** Lets promise callbacks run so `settled` reflects what the table did. */
const tick = () => new Promise((r) => setImmediate(r));

function track<T>(p: Promise<T>): { settled: () => 'pending' | 'resolved' | 'rejected'; value: () => T; error: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let value: T;
  let error: unknown;
  p.then((v) => ((state = 'resolved'), (value = v)), (e) => ((state = 'rejected'), (error = e)));
  return { settled: () => state, value: () => value, error: () => error };
}

test('retransmits at 0, 500, 1500, ... 31500 ms and times out at 39500 ms (RFC 8489 §6.2.1)', async () => {
  const { clock, sent, table } = setup();
  const { tid, bytes } = bindingRequest();
  const r = track(table.request(bytes, SERVER));
  clock.advance(39_499);
  await tick();
  assert.deepEqual(sent.map((s) => s.at), [0, 500, 1500, 3500, 7500, 15500, 31500]);
  assert.ok(sent.every((s) => s.buf === bytes && s.port === 3478 && s.address === '192.0.2.10'));
  assert.equal(r.settled(), 'pending');
  clock.advance(1);
  await tick();
  assert.equal(r.settled(), 'rejected');
  const err = r.error();
  assert.ok(err instanceof StunTimeoutError);
  assert.ok(isSluiceError(err, 'SLUICE_ERR_STUN_TIMEOUT'));
  assert.equal(err.transmissions, 7);
  assert.equal(err.elapsedMs, 39_500);
  assert.equal(err.transactionId, tid.toString('hex'));
  assert.equal(table.size, 0);
  assert.equal(clock.pendingTimers, 0);
  assert.equal(table.handleResponse(response(tid), SERVER), false); // too late
});

test('a matching response resolves; other ids and requests are not consumed', async () => {
  const { clock, table } = setup();
  const { tid, bytes } = bindingRequest();
  const p = table.request(bytes, SERVER);
  clock.advance(120);
  assert.equal(table.handleResponse(response(randomTransactionId()), SERVER), false);
  const asRequest = decodeStunDatagram(bytes)!;
  assert.equal(table.handleResponse(asRequest, SERVER), false);
  const res = response(tid);
  assert.equal(table.handleResponse(res, { address: '203.0.113.5', port: 1 }), true);
  const out = await p;
  assert.equal(out.response, res);
  assert.deepEqual(out.from, { address: '203.0.113.5', port: 1 });
  assert.equal(out.transmissions, 1);
  assert.equal(out.rttMs, 120);
  assert.equal(out.elapsedMs, 120);
  assert.equal(table.handleResponse(res, SERVER), false); // duplicate
  assert.equal(clock.pendingTimers, 0);
});

test('after a retransmission the RTT sample is withheld (Karn) and transmissions are counted', async () => {
  const { clock, table } = setup();
  const { tid, bytes } = bindingRequest();
  const p = table.request(bytes, SERVER);
  clock.advance(1600);
  table.handleResponse(response(tid), SERVER);
  const out = await p;
  assert.equal(out.transmissions, 3);
  assert.equal(out.rttMs, undefined);
  assert.equal(out.elapsedMs, 1600);
});

test('an error response is a result, not a rejection', async () => {
  const { table } = setup();
  const { tid, bytes } = bindingRequest();
  const p = table.request(bytes, SERVER);
  table.handleResponse(response(tid, 'error'), SERVER);
  assert.equal((await p).response.cls, 'error');
});

test('accept() can refuse a response (bad integrity, wrong source); the transaction keeps going', async () => {
  const { clock, sent, table } = setup();
  const { tid, bytes } = bindingRequest();
  const r = track(table.request(bytes, SERVER, { accept: (_m, from) => from.port === SERVER.port && from.address === SERVER.address }));
  assert.equal(table.handleResponse(response(tid), { address: SERVER.address, port: 9999 }), false);
  clock.advance(500);
  assert.equal(sent.length, 2);
  assert.equal(table.handleResponse(response(tid), SERVER), true);
  await tick();
  assert.equal(r.settled(), 'resolved');
});

test('abort stops retransmissions and rejects with the signal reason', async () => {
  const { clock, sent, table } = setup();
  const ac = new AbortController();
  const r = track(table.request(bindingRequest().bytes, SERVER, { signal: ac.signal }));
  clock.advance(600);
  const reason = new Error('gone');
  ac.abort(reason);
  await tick();
  assert.equal(r.error(), reason);
  clock.advance(60_000);
  assert.equal(sent.length, 2);
  assert.equal(table.size, 0);
  assert.equal(clock.pendingTimers, 0);
});

test('an already aborted signal sends nothing', async () => {
  const { sent, table } = setup();
  await assert.rejects(table.request(bindingRequest().bytes, SERVER, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  assert.equal(sent.length, 0);
});

test('close() rejects everything in flight with SLUICE_ERR_CLOSED; so does the table signal', async () => {
  const clock = new ManualClock();
  const ac = new AbortController();
  const table = new StunTransactionTable({ clock, send: () => {}, signal: ac.signal });
  const a = table.request(bindingRequest().bytes, SERVER);
  const b = table.request(bindingRequest().bytes, SERVER);
  ac.abort();
  const closed = (e: unknown) => isSluiceError(e, 'SLUICE_ERR_CLOSED');
  await assert.rejects(a, closed);
  await assert.rejects(b, closed);
  await assert.rejects(table.request(bindingRequest().bytes, SERVER), closed);
  table.close();
  assert.equal(clock.pendingTimers, 0);
});

test('a send that throws fails the transaction with SLUICE_ERR_DIAL_FAILED and its cause', async () => {
  const clock = new ManualClock();
  let calls = 0;
  const boom = new Error('ERR_SOCKET_DGRAM_NOT_RUNNING');
  const table = new StunTransactionTable({ clock, send: () => { if (++calls === 2) throw boom; } });
  const r = track(table.request(bindingRequest().bytes, SERVER));
  clock.advance(500);
  await tick();
  const err = r.error();
  assert.ok(isSluiceError(err, 'SLUICE_ERR_DIAL_FAILED'));
  assert.equal((err as Error).cause, boom);
  assert.equal(clock.pendingTimers, 0);
});

test('rejects bytes that are not one request, and a transaction id already in flight', async () => {
  const { table } = setup();
  const invalid = (e: unknown) => isSluiceError(e, 'SLUICE_ERR_STUN_INVALID');
  const tid = randomTransactionId();
  const resp = encodeStunMessage(stunMessage('success', StunMethod.Binding, tid));
  await assert.rejects(table.request(resp, SERVER), invalid);
  await assert.rejects(table.request(Buffer.from('not stun at all!!!!!!'), SERVER), invalid);
  const { bytes } = bindingRequest(tid);
  await assert.rejects(table.request(Buffer.concat([bytes, Buffer.alloc(4)]), SERVER), invalid);
  void table.request(bytes, SERVER).catch(() => {});
  await assert.rejects(table.request(bytes, SERVER), invalid);
  table.close();
});

test('timing can be tuned per table and per request (ICE paces its checks)', async () => {
  const { clock, sent, table } = setup({ rtoMs: 100 });
  const r = track(table.request(bindingRequest().bytes, SERVER, { timing: { maxTransmissions: 3, lastWaitFactor: 2 } }));
  clock.advance(499);
  await tick();
  assert.deepEqual(sent.map((s) => s.at), [0, 100, 300]);
  assert.equal(r.settled(), 'pending');
  clock.advance(1);
  await tick();
  assert.ok(r.error() instanceof StunTimeoutError);
});

test('reliable transport: one transmission, timeout after Ti = 39.5 s', async () => {
  const { clock, sent, table } = setup();
  const r = track(table.request(bindingRequest().bytes, SERVER, { reliable: true }));
  clock.advance(39_499);
  await tick();
  assert.equal(sent.length, 1);
  assert.equal(r.settled(), 'pending');
  clock.advance(1);
  await tick();
  assert.ok(r.error() instanceof StunTimeoutError);
});

test('many concurrent transactions are matched independently', async () => {
  const { clock, table } = setup();
  const reqs = Array.from({ length: 50 }, () => bindingRequest());
  const ps = reqs.map((q) => table.request(q.bytes, SERVER));
  clock.advance(10);
  for (const q of [...reqs].reverse()) assert.equal(table.handleResponse(response(q.tid), SERVER), true);
  const out = await Promise.all(ps);
  out.forEach((o, i) => assert.deepEqual(o.response.transactionId, reqs[i]!.tid));
  assert.equal(table.size, 0);
  assert.equal(clock.pendingTimers, 0);
});
