import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IceAgent, type IceAgentOptions } from '../../src/ice/agent.js';
import { ICE_DATA_PREFIX } from '../../src/ice/channel.js';
import { encodeCheckRequest } from '../../src/ice/check-message.js';
import { decodeStunDatagram, getAttribute, ErrorCode } from '../../src/protocol/stun/index.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { FakeRelay, VirtualNet, run, runUntil } from './support/virtual-net.js';
import { connectPair, signal, states } from './support/signalling.js';

/**
 * Two agents in one process on a virtual network and a hand-moved clock: every rule of the
 * agent, deterministic and fast. Real sockets, coturn and werift are in the other files.
 */

function setup(opts: { a?: Partial<IceAgentOptions>; b?: Partial<IceAgentOptions> } = {}) {
  const clock = new ManualClock();
  const net = new VirtualNet();
  const mk = (name: 'a' | 'b', address: string, over: Partial<IceAgentOptions> = {}) => {
    const agent = new IceAgent({ role: name === 'a' ? 'controlling' : 'controlled', clock, random: () => 0.5, ...over });
    const s = net.socket(address, name === 'a' ? 5000 : 6000);
    s.attach(agent.addSocket(s.socket));
    return { agent, s };
  };
  const A = mk('a', '10.0.0.1', opts.a);
  const B = mk('b', '10.0.0.2', opts.b);
  return { clock, net, a: A.agent, b: B.agent, sa: A.s, sb: B.s };
}

const connected = (...agents: IceAgent[]) => () => agents.every((x) => x.state === 'connected');

test('two agents connect on host candidates; datagrams flow both ways with the prefix stripped', async () => {
  const { clock, a, b } = setup();
  const sa = states(a);
  const sb = states(b);
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  const ms = await runUntil(clock, connected(a, b), 'connected');
  assert.ok(ms <= 500, `connected after ${ms} ms`);
  assert.deepEqual(sa, ['idle', 'checking', 'connected']);
  assert.deepEqual(sb, ['idle', 'checking', 'connected']);
  const info = a.selectedPair!;
  assert.deepEqual(info.local, { type: 'host', address: '10.0.0.1', port: 5000 });
  assert.deepEqual(info.remote, { type: 'host', address: '10.0.0.2', port: 6000 });
  assert.equal(info.relayed, false);
  assert.equal(typeof info.rttMs, 'number');
  const gotA: string[] = [];
  const gotB: string[] = [];
  a.channel.onDatagram((d) => gotA.push(d.toString()));
  b.channel.onDatagram((d) => gotB.push(d.toString()));
  for (let i = 0; i < 20; i++) {
    assert.ok(a.channel.send(Buffer.from(`a${i}`)));
    assert.ok(b.channel.send(Buffer.from(`b${i}`)));
  }
  await run(clock, 10);
  assert.deepEqual(gotB, [...Array(20).keys()].map((i) => `a${i}`));
  assert.deepEqual(gotA, [...Array(20).keys()].map((i) => `b${i}`));
  await Promise.all([a.close(), b.close()]);
  assert.equal(a.state, 'closed');
  assert.equal(a.channel.send(Buffer.from('x')), false);
  assert.equal(clock.pendingTimers, 0, 'no timer left after close');
});

test('application datagrams that are STUN messages travel as data, never as STUN', async () => {
  const { clock, a, b, sb } = setup();
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  await runUntil(clock, connected(a, b), 'connected');
  const stunLike = encodeCheckRequest({ localUfrag: 'x', remoteUfrag: b.localCredentials.ufrag, remotePwd: b.localCredentials.pwd, priority: 1, role: 'controlling', tieBreaker: 1n, useCandidate: true });
  const got: Buffer[] = [];
  b.channel.onDatagram((d) => got.push(Buffer.from(d)));
  a.channel.send(stunLike);
  a.channel.send(Buffer.alloc(0));
  await run(clock, 10);
  assert.deepEqual(got, [stunLike, Buffer.alloc(0)]);
  assert.equal(sb.received.length, 0);
});

test('a shared socket: datagrams the agent does not own are left to the caller', async () => {
  const { clock, net, a, b, sa } = setup();
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  await runUntil(clock, connected(a, b), 'connected');
  net.send({ address: '10.0.0.9', port: 1, family: 4 }, { address: '10.0.0.1', port: 5000 }, Buffer.from([0x0c, 1, 2]));
  net.send({ address: '10.0.0.9', port: 1, family: 4 }, { address: '10.0.0.1', port: 5000 }, Buffer.from([ICE_DATA_PREFIX, 1])); // data from a stranger
  const other = encodeCheckRequest({ localUfrag: 'peer', remoteUfrag: 'someone-else', remotePwd: 'p'.repeat(22), priority: 1, role: 'controlled', tieBreaker: 1n, useCandidate: false });
  net.send({ address: '10.0.0.9', port: 1, family: 4 }, { address: '10.0.0.1', port: 5000 }, other);
  await run(clock, 10);
  assert.equal(sa.received.length, 3, 'tunnel frame, stranger data and a check for another ufrag are not the agent\'s');
});

test('a check with the right ufrag but a wrong password gets 401', async () => {
  const { clock, net, a } = setup();
  a.setRemoteCredentials({ ufrag: 'peer', pwd: 'q'.repeat(22) });
  const replies: Buffer[] = [];
  net.listen('10.0.0.9', 1, (buf) => replies.push(buf));
  const bad = encodeCheckRequest({ localUfrag: 'peer', remoteUfrag: a.localCredentials.ufrag, remotePwd: 'w'.repeat(22), priority: 1, role: 'controlled', tieBreaker: 1n, useCandidate: false });
  net.send({ address: '10.0.0.9', port: 1, family: 4 }, { address: '10.0.0.1', port: 5000 }, bad);
  await run(clock, 10);
  const r = decodeStunDatagram(replies[0]!)!;
  assert.equal(r.cls, 'error');
  assert.equal(getAttribute(r, ErrorCode)?.code, 401);
  assert.equal(a.remoteCandidates.length, 0, 'an unauthenticated check teaches nothing');
});

test('trickle: candidates and credentials in any order, late end-of-candidates', async () => {
  const { clock, a, b } = setup();
  const ab = signal(a, b, { hold: true });
  const ba = signal(b, a, { hold: true });
  await Promise.all([a.gather(), b.gather()]);
  ab.release(); // B has A's candidates before it knows A's credentials
  await run(clock, 200);
  assert.equal(b.state, 'idle');
  b.setRemoteCredentials(a.localCredentials);
  a.setRemoteCredentials(b.localCredentials);
  await run(clock, 500);
  ba.release();
  await runUntil(clock, connected(a, b), 'connected');
});

test('peer-reflexive: a side that never hears the other\'s candidates still connects', async () => {
  const { clock, a, b } = setup();
  signal(a, b); // A's candidates reach B; B's never reach A
  a.setRemoteCredentials(b.localCredentials);
  b.setRemoteCredentials(a.localCredentials);
  await Promise.all([a.gather(), b.gather()]);
  await runUntil(clock, connected(a, b), 'connected');
  assert.equal(a.selectedPair!.remote.type, 'prflx');
  assert.equal(a.remoteCandidates[0]!.type, 'prflx');
});

for (const role of ['controlling', 'controlled'] as const) {
  test(`role conflict: both ${role}, the larger tie-breaker decides (487 repair)`, async () => {
    const { clock, net, a, b } = setup({ a: { role, tieBreaker: 10n }, b: { role, tieBreaker: 20n } });
    let conflicts = 0;
    net.drop = (_f, _t, buf) => {
      const m = buf[0]! <= 3 ? decodeStunDatagram(buf) : undefined;
      if (m?.cls === 'error' && getAttribute(m, ErrorCode)?.code === 487) conflicts++;
      return false;
    };
    connectPair(a, b);
    await Promise.all([a.gather(), b.gather()]);
    await runUntil(clock, connected(a, b), 'connected');
    assert.equal(b.role, 'controlling');
    assert.equal(a.role, 'controlled');
    assert.ok(conflicts >= 1, 'a 487 Role Conflict was sent');
  });
}

test('consent (RFC 7675): checks every 4-6 s; disconnected without answers, failed exactly 30 s after the last', async () => {
  const { clock, net, a, b } = setup();
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  await runUntil(clock, connected(a, b), 'connected');
  const checksFromA: number[] = [];
  const origDrop = net.drop;
  net.drop = (from, to, buf) => {
    if (from.address === '10.0.0.1' && buf[0] === 0 && buf[1] === 1) checksFromA.push(clock.now());
    return origDrop(from, to, buf);
  };
  await run(clock, 30_000, 50);
  const starts = checksFromA.filter((t, i) => i === 0 || t - checksFromA[i - 1]! > 1000);
  assert.ok(starts.length >= 5, `${starts.length} consent checks in 30 s`);
  for (let i = 1; i < starts.length; i++) {
    const gap = starts[i]! - starts[i - 1]!;
    assert.ok(gap >= 4000 && gap <= 6000 + 60, `gap ${gap} ms`);
  }
  assert.equal(a.state, 'connected');
  // B vanishes: nothing reaches it any more.
  let lastAnswerAt = clock.now();
  net.drop = (from, to) => to.address === '10.0.0.2' || from.address === '10.0.0.2';
  const sa = states(a);
  const seen: { state: string; at: number }[] = [];
  a.on('state', (s) => seen.push({ state: s, at: clock.now() }));
  // The last answered consent check was at most one interval ago.
  lastAnswerAt = starts.at(-1)!;
  await runUntil(clock, () => a.state === 'failed', 'consent failure', 40_000);
  assert.deepEqual(sa.slice(1), ['disconnected', 'failed']);
  const failedAfter = seen.at(-1)!.at - lastAnswerAt;
  assert.ok(failedAfter >= 30_000 && failedAfter <= 30_100, `failed ${failedAfter} ms after the last answered check`);
  assert.ok(seen[0]!.at - lastAnswerAt >= 10_000 && seen[0]!.at - lastAnswerAt <= 10_100, 'disconnected after 10 s');
  assert.equal(a.channel.send(Buffer.from('x')), false, 'no sending without consent');
  assert.equal(a.selectedPair, undefined);
});

test('consent comes back: disconnected, then connected again when answers return', async () => {
  const { clock, net, a, b } = setup();
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  await runUntil(clock, connected(a, b), 'connected');
  net.drop = (_from, to) => to.address === '10.0.0.2';
  await runUntil(clock, () => a.state === 'disconnected', 'disconnected', 20_000);
  net.drop = () => false;
  await runUntil(clock, () => a.state === 'connected', 'connected again', 10_000);
});

test('checking fails when every pair fails and both sides are done gathering', async () => {
  const { clock, net, a, b } = setup();
  net.drop = () => true;
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  const ms = await runUntil(clock, () => a.state === 'failed' && b.state === 'failed', 'failed', 30_000);
  assert.ok(ms >= 9_000 && ms <= 10_000, `failed after ${ms} ms (one check times out after 9.5 s)`);
});

test('ICE restart: new credentials, a new pair, data again; the old ufrag is no longer answered', async () => {
  const { clock, net, a, b, sa: sockA } = setup();
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  await runUntil(clock, connected(a, b), 'connected');
  const oldUfrag = a.localCredentials.ufrag;
  const sa = states(a);
  b.restart();
  a.restart();
  assert.notEqual(a.localCredentials.ufrag, oldUfrag);
  assert.equal(a.state, 'checking');
  assert.ok(a.channel.send(Buffer.from('still on the old pair')));
  a.setRemoteCredentials(b.localCredentials);
  b.setRemoteCredentials(a.localCredentials);
  await runUntil(clock, connected(a, b), 'connected after restart');
  assert.deepEqual(sa.slice(1), ['checking', 'connected']);
  const got: string[] = [];
  b.channel.onDatagram((d) => got.push(d.toString()));
  a.channel.send(Buffer.from('after restart'));
  await run(clock, 10);
  assert.deepEqual(got, ['after restart']);
  const stale = encodeCheckRequest({ localUfrag: 'peer', remoteUfrag: oldUfrag, remotePwd: 'p'.repeat(22), priority: 1, role: 'controlled', tieBreaker: 1n, useCandidate: false });
  net.send({ address: '10.0.0.2', port: 6000, family: 4 }, { address: '10.0.0.1', port: 5000 }, stale);
  await run(clock, 10);
  assert.equal(sockA.received.length, 1, 'a check for the old ufrag is not the agent\'s any more');
});

test('ordinary checks are paced: one every Ta (50 ms)', async () => {
  const { clock, net, a, b } = setup();
  const sent: number[] = [];
  net.drop = (from, _to, buf) => {
    const m = from.address === '10.0.0.1' && buf[0]! <= 3 ? decodeStunDatagram(buf) : undefined;
    if (m?.cls === 'request') sent.push(clock.now());
    return false;
  };
  for (let i = 0; i < 8; i++) a.addRemoteCandidate(`candidate:${i} 1 udp ${2000 - i} 10.9.9.${i + 1} 7000 typ host`);
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  await run(clock, 400, 5);
  const firsts = [...new Set(sent)].slice(0, 9);
  for (let i = 1; i < firsts.length; i++) assert.ok(firsts[i]! - firsts[i - 1]! >= 50, `checks ${firsts.join(', ')}`);
});

test('an external relay (RelayTransport) becomes a relayed candidate; direct wins when it works', async () => {
  const { clock, net, a, b } = setup();
  const relay = new FakeRelay(net, '192.0.2.50', 40_000);
  a.addRelay(relay);
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  assert.ok(a.localCandidates.some((c) => c.type === 'relay' && c.address === '192.0.2.50'));
  await runUntil(clock, connected(a, b), 'connected');
  assert.equal(a.selectedPair!.relayed, false);
  await a.close();
  assert.equal(relay.closed, 0, 'the caller owns relays it added');
});

test('relay fallback: when host-to-host is blocked the relayed pair is selected after the grace period', async () => {
  const { clock, net, a, b } = setup();
  const relay = new FakeRelay(net, '192.0.2.50', 40_000);
  a.addRelay(relay);
  net.drop = (from, to) => (from.address === '10.0.0.1' && to.address === '10.0.0.2') || (from.address === '10.0.0.2' && to.address === '10.0.0.1');
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  const ms = await runUntil(clock, connected(a, b), 'connected');
  assert.ok(ms >= 2000 && ms < 5000, `relayed pair after ${ms} ms (grace 2 s)`);
  assert.equal(a.selectedPair!.relayed, true);
  assert.equal(a.selectedPair!.local.type, 'relay');
  assert.equal(b.selectedPair!.remote.type, 'relay');
  const got: string[] = [];
  a.channel.onDatagram((d) => got.push(d.toString()));
  b.channel.send(Buffer.from('via relay'));
  await run(clock, 10);
  assert.deepEqual(got, ['via relay']);
  // The relay dies: a selected pair on it fails at once.
  relay.fail(new Error('relay lost'));
  assert.equal(a.state, 'failed');
});

test('policy relay: no host candidate is advertised or paired', async () => {
  const { clock, net, a, b } = setup({ a: { policy: 'relay' }, b: { policy: 'relay' } });
  a.addRelay(new FakeRelay(net, '192.0.2.50', 40_000));
  b.addRelay(new FakeRelay(net, '192.0.2.51', 40_000));
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  assert.deepEqual(a.localCandidates.map((c) => c.type), ['relay']);
  await runUntil(clock, connected(a, b), 'connected');
  assert.equal(a.selectedPair!.local.type, 'relay');
  assert.equal(a.selectedPair!.remote.type, 'relay');
});

test('a silent STUN server: gathering still completes (after ~5.5 s) and names the failure; host candidates work', async () => {
  const { clock, a } = setup({ a: { stunServers: [{ address: '10.0.0.200', port: 3478 }] } });
  const done: { errors: readonly Error[] }[] = [];
  a.on('gathering-complete', (e) => done.push(e));
  void a.gather();
  assert.deepEqual(a.localCandidates.map((c) => c.type), ['host'], 'the host candidate comes at once');
  const ms = await runUntil(clock, () => done.length === 1, 'gathering-complete', 10_000);
  assert.ok(ms >= 5400 && ms <= 5600, `${ms} ms`);
  assert.equal(done[0]!.errors.length, 1);
  assert.equal((done[0]!.errors[0] as { code?: string }).code, 'SLUICE_ERR_STUN_TIMEOUT');
});

test('arbitrary datagrams into the ingress never throw, in any state', async () => {
  const { clock, a, b } = setup();
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  const ingress = a.addSocket({ local: { address: '10.0.0.3', port: 5001, family: 4 }, send: () => {} });
  const check = encodeCheckRequest({ localUfrag: 'x', remoteUfrag: a.localCredentials.ufrag, remotePwd: a.localCredentials.pwd, priority: 1, role: 'controlled', tieBreaker: 1n, useCandidate: true });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat(check.length - 1), fc.integer({ min: 0, max: 255 }), (junk, at, byte) => {
    ingress(Buffer.from(junk), { address: '192.0.2.1', port: 1 });
    ingress(Buffer.from(check).fill(byte, at, at + 1), { address: '192.0.2.1', port: 1 });
    ingress(Buffer.concat([Buffer.from([ICE_DATA_PREFIX]), Buffer.from(junk)]), { address: '10.0.0.2', port: 6000 });
  }), { numRuns: 500 });
  await runUntil(clock, connected(a, b), 'connected despite the noise');
});

test('close() from inside a state handler, and an aborted signal, both close cleanly', async () => {
  const ac = new AbortController();
  const { clock, a, b } = setup({ b: { signal: ac.signal } });
  let selected = 0;
  a.on('state', (s) => s === 'connected' && void a.close());
  a.on('selected-pair', () => selected++);
  connectPair(a, b);
  await Promise.all([a.gather(), b.gather()]);
  await runUntil(clock, () => a.state === 'closed', 'A closed from its own handler');
  assert.equal(selected, 1);
  ac.abort();
  await run(clock, 10);
  assert.equal(b.state, 'closed');
  assert.throws(() => b.gather(), (e) => (e as { code?: string }).code === 'SLUICE_ERR_CLOSED');
  assert.equal(b.addRemoteCandidate('candidate:1 1 udp 1 10.0.0.9 9 typ host'), false);
  await run(clock, 60_000, 1000);
  assert.equal(clock.pendingTimers, 0, 'no timer left behind');
});
