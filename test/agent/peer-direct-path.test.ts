import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TunnelEnd } from '../../src/datapath/offload.js';
import type { DirectFlowEnd, PeerAttempt } from '../../src/agent/peer-attempt.js';
import { DirectPath, DIRECT_DOUBT_MS, DIRECT_KEEPALIVE_MS, DIRECT_SILENCE_MS } from '../../src/agent/peer-direct-path.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** The parts of an attempt the direct path reads: a plain object records what it is asked. */
function fakeAttempt(opts: { relayed?: boolean; sendOk?: boolean } = {}) {
  const rec = { keepalives: [] as number[], sent: [] as number[], closedOffloads: 0, ends: [] as DirectFlowEnd[] };
  const a = {
    connected: false,
    ice: { selectedPair: { relayed: opts.relayed ?? false } },
    send: (tag: number) => (rec.sent.push(tag), opts.sendOk ?? true),
    keepalive: (n: number) => void rec.keepalives.push(n),
    offloads: { closeAll: () => void rec.closedOffloads++ },
    offloadEnd: (end: DirectFlowEnd) => (rec.ends.push(end), {} as TunnelEnd),
  };
  return { a, attempt: a as unknown as PeerAttempt, rec };
}

function setup() {
  const clock = new ManualClock();
  const counters = { directSent: 0, directReceived: 0, switches: 0 };
  const calls = { touch: 0, changed: 0 };
  const path = new DirectPath({ clock, counters, touch: () => void calls.touch++, changed: () => void calls.changed++ });
  return { clock, counters, calls, path };
}

function flowEnd(valid = () => true): DirectFlowEnd & { forwardedCalls: [number, number][] } {
  const forwardedCalls: [number, number][] = [];
  return { tag: 1, tagIn: 2, grant: (n) => n, groups: [], valid, forwarded: (to, from) => void forwardedCalls.push([to, from]), forwardedCalls };
}

test('usable only while the attempt is connected; kind is relayed on a TURN pair', () => {
  const { path } = setup();
  assert.equal(path.usable, false);
  assert.equal(path.kind, 'relayed');
  const { a, attempt } = fakeAttempt();
  path.adopt(attempt);
  assert.equal(path.attempt, attempt);
  assert.equal(path.usable, false);
  a.connected = true;
  assert.equal(path.usable, true);
  assert.equal(path.kind, 'direct');
  a.ice.selectedPair.relayed = true;
  assert.equal(path.kind, 'relayed');
  assert.equal(path.usable, true);
});

test('keepalives count up every DIRECT_KEEPALIVE_MS while connected; silence makes the path suspect, an ack ends it', () => {
  const { clock, counters, calls, path } = setup();
  const { a, attempt, rec } = fakeAttempt();
  path.adopt(attempt);
  path.startKeepalive();
  clock.advance(DIRECT_KEEPALIVE_MS);
  assert.deepEqual(rec.keepalives, [], 'nothing while ICE is not connected');
  a.connected = true;
  path.proven();
  clock.advance(DIRECT_KEEPALIVE_MS * 2);
  assert.deepEqual(rec.keepalives, [1, 2]);
  assert.equal(path.inDoubt, false);
  clock.advance(DIRECT_DOUBT_MS - DIRECT_KEEPALIVE_MS * 2 + 1);
  assert.equal(path.inDoubt, true);
  assert.equal(path.usable, true, 'in doubt is still usable (flows send on both paths)');
  assert.equal(path.suspect, false);
  // proven() at 250 ms; the tick at 1250 ms sees exactly DIRECT_SILENCE_MS, not more.
  clock.advance(DIRECT_SILENCE_MS - DIRECT_DOUBT_MS - 1);
  assert.equal(path.suspect, false);
  clock.advance(DIRECT_KEEPALIVE_MS);
  assert.equal(path.suspect, true);
  assert.equal(path.usable, false);
  assert.equal(rec.closedOffloads, 1);
  assert.deepEqual([counters.switches, calls.changed], [1, 1]);
  clock.advance(DIRECT_KEEPALIVE_MS);
  assert.deepEqual([rec.closedOffloads, counters.switches, calls.changed], [1, 1, 1], 'suspect once, not per tick');
  path.ack();
  assert.equal(path.suspect, false);
  assert.equal(path.inDoubt, false);
  assert.deepEqual([counters.switches, calls.changed], [2, 2]);
  path.ack();
  assert.deepEqual([counters.switches, calls.changed], [2, 2], 'an ack on a healthy path changes nothing');
  clock.advance(DIRECT_SILENCE_MS + DIRECT_KEEPALIVE_MS);
  assert.equal(path.suspect, true);
  path.proven();
  assert.equal(path.suspect, false, 'ICE connected again: proven, without a switch counted');
  assert.equal(counters.switches, 3);
  path.stopKeepalive();
  const n = rec.keepalives.length;
  clock.advance(DIRECT_KEEPALIVE_MS * 4);
  assert.equal(rec.keepalives.length, n);
  assert.equal(clock.pendingTimers, 0);
});

test('drop returns the attempt once and forgets its suspicion', () => {
  const { clock, path } = setup();
  const { a, attempt } = fakeAttempt();
  path.adopt(attempt);
  a.connected = true;
  path.startKeepalive();
  clock.advance(DIRECT_SILENCE_MS + DIRECT_KEEPALIVE_MS);
  assert.equal(path.suspect, true);
  assert.equal(path.drop(), attempt);
  assert.equal(path.suspect, false);
  assert.equal(path.attempt, undefined);
  assert.equal(path.drop(), undefined);
  path.stopKeepalive();
});

test('send counts only datagrams the usable attempt took', () => {
  const { counters, path } = setup();
  const ok = fakeAttempt();
  assert.equal(path.send(5, Buffer.from('x')), false);
  path.adopt(ok.attempt);
  assert.equal(path.send(5, Buffer.from('x')), false, 'not connected');
  assert.deepEqual(ok.rec.sent, []);
  ok.a.connected = true;
  assert.equal(path.send(5, Buffer.from('x')), true);
  assert.equal(counters.directSent, 1);
  const full = fakeAttempt({ sendOk: false });
  full.a.connected = true;
  path.adopt(full.attempt);
  assert.equal(path.send(6, Buffer.from('x')), false);
  assert.equal(counters.directSent, 1);
});

test('offloadEnd: none in doubt; the batch counts as direct datagrams and activity; invalid once the attempt or the doubt changes', () => {
  const { clock, counters, calls, path } = setup();
  const { a, attempt, rec } = fakeAttempt();
  path.adopt(attempt);
  a.connected = true;
  path.proven();
  let flowValid = true;
  const flow = flowEnd(() => flowValid);
  assert.notEqual(path.offloadEnd(flow), null);
  const end = rec.ends[0]!;
  assert.equal(end.tag, 1);
  end.forwarded(3, 4);
  end.forwarded(0, 0);
  assert.deepEqual([counters.directSent, counters.directReceived, calls.touch], [3, 4, 1]);
  assert.deepEqual(flow.forwardedCalls, [[3, 4], [0, 0]]);
  assert.equal(end.valid(), true);
  flowValid = false;
  assert.equal(end.valid(), false);
  flowValid = true;
  clock.advance(DIRECT_DOUBT_MS + 1);
  assert.equal(end.valid(), false, 'in doubt');
  assert.equal(path.offloadEnd(flow), null);
  path.proven();
  assert.equal(end.valid(), true);
  const other = fakeAttempt();
  other.a.connected = true;
  path.adopt(other.attempt);
  assert.equal(end.valid(), false, 'another attempt');
});
