import test from 'node:test';
import assert from 'node:assert/strict';
import { diagnose, natBehaviour, type DiagnosisInput } from '../../src/agent/peer-diagnosis.js';
import type { IceCandidate } from '../../src/ice/candidate.js';
import type { CandidatePair } from '../../src/ice/checklist.js';

const cand = (type: IceCandidate['type'], address: string, port: number): IceCandidate => ({
  foundation: type, component: 1, transport: 'udp', priority: 1, address, port, family: 4, type,
});
const pair = (local: IceCandidate, remote: IceCandidate, state: CandidatePair['state']) =>
  ({ base: { candidate: local }, remote, state, rttMs: undefined }) as unknown as CandidatePair;

const hostA = cand('host', '10.0.1.2', 4000);
const srflxA = cand('srflx', '198.51.100.10', 30000);
const hostB = cand('host', '10.0.2.2', 5000);
const srflxB = cand('srflx', '198.51.100.20', 40000);

function failed(local: IceCandidate[], remote: IceCandidate[]): DiagnosisInput {
  return {
    wantDirect: true, state: 'connected', keys: true, peer: 'home',
    ice: { state: 'failed', local, remote, pairs: [pair(hostA, srflxB, 'failed')], selected: undefined },
  };
}

test('NAT behaviour from candidates: none, cone, symmetric, unknown', () => {
  assert.equal(natBehaviour([]), 'unknown (no candidates yet)');
  assert.equal(natBehaviour([cand('host', '198.51.100.5', 1), cand('srflx', '198.51.100.5', 1)]), 'no NAT (public address)');
  assert.equal(natBehaviour([hostA, srflxA, cand('prflx', '198.51.100.10', 30000)]), 'keeps one mapping for every destination (cone NAT)');
  assert.match(natBehaviour([hostA, srflxA, cand('prflx', '198.51.100.10', 31234)]), /^maps ports per destination \(symmetric NAT\): 30000 toward the gateway, 31234 toward the peer$/);
  assert.match(natBehaviour([hostA]), /no server-reflexive/);
  assert.equal(natBehaviour([hostA], true), 'no NAT (the gateway sees the host address)');
});

test('why relayed, in plain words', () => {
  const symA = [hostA, srflxA, cand('prflx', '198.51.100.10', 31000)];
  const symB = [hostB, srflxB, cand('prflx', '198.51.100.20', 41000)];
  assert.equal(diagnose(failed(symA, symB)).reason, 'both sides map ports per destination (symmetric NAT): neither can predict the port the other will use');
  assert.match(diagnose(failed(symA, [hostB, srflxB])).reason!, /^this side maps ports per destination \(symmetric NAT\) and home's NAT filters/);
  assert.match(diagnose(failed([hostA, srflxA], symB)).reason!, /^home maps ports per destination/);
  assert.match(diagnose(failed([hostA], [hostB, srflxB])).reason!, /gateway did not answer STUN/);
  const noNat = { ...failed([hostA], [hostB, srflxB]), stunAnswered: true, skipped: ['host 10.0.2.2:5000 (private)'] };
  assert.equal(diagnose(noNat).nat.local, 'no NAT (the gateway sees the host address)');
  assert.match(diagnose(noNat).reason!, /^no candidate pair answered \(1 tried\).*; skipped by peerCandidates: host 10.0.2.2:5000 \(private\) \(if both agents share that network/);
  assert.match(diagnose(failed([hostA, srflxA], [])).reason!, /^home sent no usable candidate/);
  assert.equal(diagnose({ wantDirect: false, state: 'connected', ice: undefined }).reason, 'path: relay is configured');
  assert.equal(diagnose({ wantDirect: true, state: 'idle', ice: undefined }).reason, 'idle: no traffic, no path set up');
  const checking: DiagnosisInput = {
    wantDirect: true, state: 'connecting', keys: true, peer: 'home', skipped: ['host 10.0.2.2:5000 (private)'],
    ice: { state: 'checking', local: [hostA], remote: [], pairs: [], selected: undefined },
  };
  assert.match(diagnose(checking).reason!, /every candidate of home is in an address class peerCandidates does not allow: host 10.0.2.2:5000 \(private\)/);
  assert.match(diagnose({ ...checking, keys: false }).reason!, /waiting for home's answer/);
  assert.match(diagnose({ ...checking, suspect: true }).reason!, /stopped answering/);
});

test('direct: no reason, the selected pair and the pairs with their outcome', () => {
  const d = diagnose({
    wantDirect: true, state: 'connected', keys: true,
    ice: {
      state: 'connected', local: [hostA, srflxA], remote: [hostB, srflxB],
      pairs: [pair(hostA, hostB, 'failed'), pair(hostA, srflxB, 'succeeded')],
      selected: { local: { type: 'srflx', address: srflxA.address, port: srflxA.port }, remote: { type: 'srflx', address: srflxB.address, port: srflxB.port }, base: { address: hostA.address, port: hostA.port, family: 4 }, relayed: false, rttMs: 3 },
    },
  });
  assert.equal(d.reason, undefined);
  assert.equal(d.selected, 'srflx 198.51.100.10:30000 <-> srflx 198.51.100.20:40000');
  assert.deepEqual(d.pairs.map((p) => p.state), ['failed', 'succeeded']);
  assert.deepEqual(d.remoteCandidates, ['host 10.0.2.2:5000', 'srflx 198.51.100.20:40000']);
});

test('NAT verdict on a working direct link: from the mapping the peer saw in the checks, not only from prflx candidates', () => {
  // Two cone NATs: each side's checks were answered with its srflx mapping (so no prflx candidate
  // is ever made), and the peer answered from its own srflx address.
  const checked = (local: IceCandidate, remote: IceCandidate, mapped: IceCandidate) =>
    ({ base: { kind: 'socket', candidate: local }, remote, state: 'succeeded', mapped, rttMs: 2 }) as unknown as CandidatePair;
  const cone = diagnose({
    wantDirect: true, state: 'connected', keys: true, peer: 'home',
    ice: {
      state: 'connected', local: [hostA, srflxA], remote: [hostB, srflxB],
      pairs: [pair(hostA, hostB, 'failed'), checked(hostA, srflxB, srflxA)],
      selected: { local: { type: 'srflx', address: srflxA.address, port: srflxA.port }, remote: { type: 'srflx', address: srflxB.address, port: srflxB.port }, base: { address: hostA.address, port: hostA.port, family: 4 }, relayed: false, rttMs: 2 },
    },
  });
  assert.equal(cone.reason, undefined);
  assert.deepEqual(cone.nat, { local: 'keeps one mapping for every destination (cone NAT)', remote: 'keeps one mapping for every destination (cone NAT)' });

  // This side symmetric: the peer saw another port than the gateway did; the peer's side cone.
  const mappedA = cand('prflx', '198.51.100.10', 30555);
  const sym = diagnose({
    wantDirect: true, state: 'connected', keys: true, peer: 'home',
    ice: { state: 'connected', local: [hostA, srflxA], remote: [hostB, srflxB], pairs: [checked(hostA, srflxB, mappedA)], selected: undefined },
  });
  assert.equal(sym.nat.local, 'maps ports per destination (symmetric NAT): 30000 toward the gateway, 30555 toward the peer');
  assert.equal(sym.nat.remote, 'keeps one mapping for every destination (cone NAT)');

  // A pair through a TURN relay says nothing about either NAT's mapping toward the peer.
  const relayed = { base: { kind: 'relay', candidate: cand('relay', '203.0.113.9', 50000) }, remote: srflxB, state: 'succeeded', mapped: cand('relay', '203.0.113.9', 50000) } as unknown as CandidatePair;
  const viaTurn = diagnose({ wantDirect: true, state: 'connected', keys: true, ice: { state: 'connected', local: [hostA, srflxA], remote: [hostB, srflxB], pairs: [relayed], selected: undefined } });
  assert.equal(viaTurn.nat.local, 'behind NAT, mapping toward the peer not seen yet');
});
