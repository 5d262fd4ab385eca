import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IceAgentState } from '../../src/ice/agent-state.js';
import { foundationOf, type CandidateType, type IceCandidate } from '../../src/ice/candidate.js';
import type { CandidatePair, IceBase } from '../../src/ice/checklist.js';
import { IceConnectivity, selectedPairInfo } from '../../src/ice/connectivity.js';
import { candidatePriority } from '../../src/ice/priority.js';
import { StunTransactionTable } from '../../src/turn/stun-transaction.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** The ICE agent's state and its timers alone, on a hand-moved clock; consent checks answered by the test. */

const TIMING = { consentIntervalMs: 1000, consentStaleMs: 2000, consentExpireMs: 5000, connectTimeoutMs: 3000 };

function candidate(type: CandidateType, address: string, port: number): IceCandidate {
  return { foundation: foundationOf(type, address), component: 1, transport: 'udp', priority: candidatePriority(type, 65535), address, port, family: 4, type };
}

function pair(opts: { base?: 'socket' | 'relay'; mapped?: IceCandidate; remoteType?: CandidateType } = {}): CandidatePair {
  const clock = new ManualClock();
  const kind = opts.base ?? 'socket';
  const local = candidate(kind === 'socket' ? 'host' : 'relay', '10.0.0.1', 5000);
  const base: IceBase = { id: 0, kind, address: { address: '10.0.0.1', port: 5000, family: 4 }, candidate: local, table: new StunTransactionTable({ clock, send: () => {} }), send: () => {} };
  return {
    id: 'p', base, remote: candidate(opts.remoteType ?? 'host', '192.0.2.7', 7000), state: 'succeeded', priority: 1n,
    mapped: opts.mapped, validAt: 0, remoteNominated: false, rttMs: 12,
  };
}

function setup() {
  const clock = new ManualClock();
  const moves: [IceAgentState, IceAgentState][] = [];
  const checks: number[] = [];
  let answer = true;
  let stops = 0;
  const conn = new IceConnectivity({
    clock, random: () => 0.5, timing: TIMING,
    check: async () => (checks.push(clock.now()), answer),
    stopChecks: () => void stops++,
    onState: (to, from) => moves.push([to, from]),
  });
  return { clock, conn, moves, checks, stops: () => stops, setAnswer: (a: boolean) => (answer = a) };
}

async function advance(clock: ManualClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
}

test('checking fails at the connect deadline, to the ms; the checks are stopped and no pair carries data', () => {
  const { clock, conn, moves, stops } = setup();
  assert.equal(conn.state, 'idle');
  conn.startChecking();
  clock.advance(TIMING.connectTimeoutMs - 1);
  assert.equal(conn.state, 'checking');
  clock.advance(1);
  assert.equal(conn.state, 'failed');
  assert.deepEqual(moves, [['checking', 'idle'], ['failed', 'checking']]);
  assert.equal(stops(), 1);
  assert.equal(conn.pair, undefined);
  assert.equal(clock.pendingTimers, 0);
});

test('a selection cancels the deadline; consent lost: disconnected at staleMs, failed at expireMs, pair dropped', async () => {
  const { clock, conn, moves, checks, setAnswer } = setup();
  conn.startChecking();
  clock.advance(500);
  const p = pair();
  conn.select(p);
  assert.equal(conn.state, 'connected');
  assert.equal(conn.pair, p);
  setAnswer(false);
  await advance(clock, TIMING.connectTimeoutMs);
  assert.ok(checks.length >= 2, `consent checks at ${checks.join(', ')}`);
  assert.equal(conn.state, 'disconnected', 'stale after 2 s without an answer; the connect deadline did not fire');
  await advance(clock, TIMING.consentExpireMs - TIMING.connectTimeoutMs - 100);
  assert.equal(conn.state, 'disconnected');
  await advance(clock, 100);
  assert.equal(conn.state, 'failed');
  assert.equal(conn.pair, undefined);
  assert.deepEqual(moves.map(([to]) => to), ['checking', 'connected', 'disconnected', 'failed']);
});

test('an answer after stale makes it connected again', async () => {
  const { clock, conn, moves, setAnswer } = setup();
  conn.startChecking();
  conn.select(pair());
  setAnswer(false);
  await advance(clock, 2500);
  assert.equal(conn.state, 'disconnected');
  setAnswer(true);
  await advance(clock, 1100);
  assert.equal(conn.state, 'connected');
  assert.deepEqual(moves.map(([to]) => to), ['checking', 'connected', 'disconnected', 'connected']);
  conn.close();
});

test('dropConsent (a restart) keeps the pair and ends the old consent; close is final', async () => {
  const { clock, conn, checks, stops, moves } = setup();
  conn.startChecking();
  const p = pair();
  conn.select(p);
  conn.dropConsent();
  await advance(clock, TIMING.consentExpireMs + 1000);
  assert.deepEqual(checks, []);
  assert.equal(conn.state, 'connected');
  assert.equal(conn.pair, p);
  conn.close();
  conn.close();
  conn.startChecking();
  assert.equal(conn.state, 'closed');
  assert.deepEqual(moves.map(([to]) => to), ['checking', 'connected', 'closed']);
  assert.equal(stops(), 2, 'every close stops the checks; the state moves once');
});

test('selectedPairInfo: this side as the peer saw it, relayed when either end is a relay', () => {
  const plain = selectedPairInfo(pair());
  assert.deepEqual(plain, {
    local: { type: 'host', address: '10.0.0.1', port: 5000 }, remote: { type: 'host', address: '192.0.2.7', port: 7000 },
    base: { address: '10.0.0.1', port: 5000, family: 4 }, relayed: false, rttMs: 12,
  });
  const mapped = selectedPairInfo(pair({ mapped: candidate('prflx', '203.0.113.9', 41000) }));
  assert.deepEqual(mapped.local, { type: 'prflx', address: '203.0.113.9', port: 41000 });
  assert.equal(selectedPairInfo(pair({ base: 'relay' })).relayed, true);
  assert.equal(selectedPairInfo(pair({ remoteType: 'relay' })).relayed, true);
});
