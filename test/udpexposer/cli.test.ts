import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import { systemClock } from '../../src/core/clock.js';
import { parseUdpexposerArgs, runUdpexposerCommand, type UdpexposerReady } from '../../src/cli/udpexposer.js';
import { echoServer, sleep, udpPeer, waitFor } from './net.js';

function sink() {
  let text = '';
  return { write: (s: string) => void (text += s), get text() { return text; } };
}

test('udpexposer flags: defaults and both roles', () => {
  assert.deepEqual(parseUdpexposerArgs(['0.0.0.0:1234', '-s']), {
    listen: { host: '0.0.0.0', port: 1234 },
    mode: 'server',
    localConnect: undefined,
    serverAddr: undefined,
    maxClients: 4,
    pingIntervalMs: 25_000,
    password: undefined,
    allowPrivatePeers: false,
    allowLoopbackPeers: false,
    replyBudget: { ratio: 64, windowMs: 10_000 },
    datapath: 'auto',
    batchDelayUs: 'auto',
    schedulerSliceUs: undefined,
    ignored: [],
  });
  const budget = parseUdpexposerArgs(['0.0.0.0:1', '-s', '--reply-budget', '200/30s', '--allow-loopback-peers']);
  assert.ok(budget !== 'help');
  assert.deepEqual(budget.replyBudget, { ratio: 200, windowMs: 30_000 });
  assert.equal(budget.allowLoopbackPeers, true);
  const off = parseUdpexposerArgs(['0.0.0.0:1', '-s', '--reply-budget=off']);
  assert.ok(off !== 'help' && off.replyBudget === 'off');
  const clientSide = parseUdpexposerArgs(['0.0.0.0:1', '-c', '127.0.0.1:2', '-a', '127.0.0.1:3', '--reply-budget', '8', '--allow-loopback-peers']);
  assert.ok(clientSide !== 'help');
  assert.deepEqual(clientSide.ignored, ['--allow-loopback-peers', '--reply-budget']);
  const c = parseUdpexposerArgs(['[::]:0', '-c', '127.0.0.1:51820', '-a', '[2001:db8::1]:1234', '-n', '16', '-i', '300', '-P', 'pw']);
  assert.ok(c !== 'help');
  assert.equal(c.mode, 'client');
  assert.deepEqual(c.listen, { host: '::', port: 0 });
  assert.deepEqual(c.localConnect, { host: '127.0.0.1', port: 51820 });
  assert.deepEqual(c.serverAddr, { host: '2001:db8::1', port: 1234 });
  assert.equal(c.maxClients, 16);
  assert.equal(c.pingIntervalMs, 300);
  assert.equal(c.password, 'pw');
  const long = parseUdpexposerArgs(['127.0.0.1:5', '--server-mode', '--max-clients=2', '--password', 'x', '--allow-private-peers']);
  assert.ok(long !== 'help' && long.mode === 'server' && long.maxClients === 2 && long.password === 'x' && long.allowPrivatePeers);
  assert.equal(parseUdpexposerArgs(['-h']), 'help');
  assert.equal(parseUdpexposerArgs(['127.0.0.1:1', '--help']), 'help');
});

test('udpexposer flags: -s wins over -c/-a, which are reported as ignored', () => {
  const a = parseUdpexposerArgs(['127.0.0.1:1', '-s', '-c', '127.0.0.1:2', '-a', '127.0.0.1:3']);
  assert.ok(a !== 'help');
  assert.equal(a.mode, 'server');
  assert.deepEqual(a.ignored, ['-c', '-a']);
});

const bad: [string[], RegExp][] = [
  [[], /listen_addr/],
  [['127.0.0.1:1'], /either -s or both -c and -a/],
  [['127.0.0.1:1', '-c', '127.0.0.1:2'], /either -s or both -c and -a/],
  [['localhost:1', '-s'], /invalid socket address/],
  [['127.0.0.1', '-s'], /invalid socket address/],
  [['127.0.0.1:1', '-c', 'example.com:2', '-a', '127.0.0.1:3'], /invalid socket address/],
  [['127.0.0.1:1', '-c', '127.0.0.1:0', '-a', '127.0.0.1:3'], /invalid socket address/],
  [['127.0.0.1:1', '-s', '-n', '0'], /out of range/],
  [['127.0.0.1:1', '-s', '-n', '65536'], /out of range/],
  [['127.0.0.1:1', '-s', '-n', '-1'], /Unrecognized|integer/],
  [['127.0.0.1:1', '-s', '-n', 'four'], /integer/],
  [['127.0.0.1:1', '-s', '-i', '0'], /out of range/],
  [['127.0.0.1:1', '-s', '-n', '2', '-n', '3'], /Duplicate/],
  [['127.0.0.1:1', '-s', '-x'], /Unrecognized argument: -x/],
  [['127.0.0.1:1', '-s', '--reply-budget', '0.5'], /--reply-budget: "0.5"/],
  [['127.0.0.1:1', '-s', '--reply-budget', '64/soon'], /--reply-budget: "64\/soon"/],
  [['127.0.0.1:1', '-s', '--reply-budget', 'lots'], /--reply-budget/],
  [['127.0.0.1:1', '-s', '-P'], /No value/],
  [['127.0.0.1:1', '-s', '--datapath', 'fast'], /--datapath: "fast" is not auto, native or js/],
  [['127.0.0.1:1', '-s', '--batch-delay-us', '10001'], /--batch-delay-us: 10001 is out of range \(0-10000\)/],
  [['127.0.0.1:1', '-s', '--batch-delay-us', '1ms'], /--batch-delay-us: "1ms" is not a non-negative integer/],
  [['127.0.0.1:1', '127.0.0.1:2', '-s'], /Unrecognized argument/],
  [['127.0.0.1:1', '-P', 'x', '-a', '127.0.0.1:2', '-S'], /dump-stats is not supported/],
];
for (const [argv, re] of bad) {
  test(`udpexposer flags refused: ${argv.join(' ') || '(none)'}`, () => {
    assert.throws(() => parseUdpexposerArgs(argv), (e) => isSluiceError(e, 'SLUICE_ERR_USAGE') && re.test(e.message));
  });
}

test('runUdpexposerCommand: usage errors exit 2, --help exits 0', async () => {
  const out = sink();
  const err = sink();
  const ac = new AbortController();
  assert.equal(await runUdpexposerCommand(['127.0.0.1:1'], { stdout: out, stderr: err, signal: ac.signal, clock: systemClock }), 2);
  assert.match(err.text, /either -s or both -c and -a/);
  assert.equal(await runUdpexposerCommand(['--help'], { stdout: out, stderr: err, signal: ac.signal, clock: systemClock }), 0);
  assert.match(out.text, /Usage: sluice udpexposer <listen_addr>/);
});

test('runUdpexposerCommand: a port already in use exits 4', async (t) => {
  const busy = await udpPeer(t);
  const ac = new AbortController();
  const err = sink();
  const code = await runUdpexposerCommand([`127.0.0.1:${busy.port}`, '-s'], { stdout: sink(), stderr: err, signal: ac.signal, clock: systemClock });
  assert.equal(code, 4);
  assert.match(err.text, /cannot bind/);
});

test('runUdpexposerCommand: server and client, password mode, echo end to end, stop on abort', async (t) => {
  const echo = await echoServer(t);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const sOut = sink();
  const cOut = sink();
  let server: UdpexposerReady | undefined;
  let client: UdpexposerReady | undefined;
  const serverDone = runUdpexposerCommand(['127.0.0.1:0', '-s', '-P', 'test-password', '-n', '2', '--allow-loopback-peers'], {
    stdout: sOut, stderr: sink(), signal: ac.signal, clock: systemClock, onReady: (r) => void (server = r),
  });
  await waitFor(() => server !== undefined, 5000);
  const clientDone = runUdpexposerCommand(
    ['127.0.0.1:0', '-c', `127.0.0.1:${echo.port}`, '-a', `127.0.0.1:${server!.local.port}`, '-P', 'test-password', '-i', '200'],
    { stdout: cOut, stderr: sink(), signal: ac.signal, clock: systemClock, onReady: (r) => void (client = r) },
  );
  await waitFor(() => cOut.text.includes('Authenticated'), 5000);
  assert.match(sOut.text, new RegExp(`New client address: 127\\.0\\.0\\.1:${client!.local.port}`));
  const pub = await udpPeer(t);
  pub.send('through the cli', server!.local.port);
  assert.equal((await pub.next()).msg.toString(), 'through the cli');
  assert.match(sOut.text, /Connectee seqn 1 from 127\.0\.0\.1:\d+/);
  assert.match(cOut.text, /New incoming channel 1/);
  ac.abort();
  assert.deepEqual(await Promise.all([serverDone, clientDone]), [0, 0]);
  assert.match(cOut.text, /Finished serving channel 1/);
});

test('runUdpexposerCommand: without -P the server says at start that it is an open amplifier, and names the reply budget', async () => {
  const ac = new AbortController();
  const err = sink();
  const done = runUdpexposerCommand(['127.0.0.1:0', '-s'], { stdout: sink(), stderr: err, signal: ac.signal, clock: systemClock, onReady: () => ac.abort() });
  assert.equal(await done, 0);
  assert.match(err.text, /without -P this server is an open amplifier by design/);
  assert.match(err.text, /replies to each connectee are held to 64x what it sent over 10s/);
  const off = sink();
  const ac2 = new AbortController();
  await runUdpexposerCommand(['127.0.0.1:0', '-s', '-P', 'x', '--reply-budget', 'off'], { stdout: sink(), stderr: off, signal: ac2.signal, clock: systemClock, onReady: () => ac2.abort() });
  assert.doesNotMatch(off.text, /open amplifier/);
  assert.match(off.text, /--reply-budget off: what the client relays to a connectee is not bounded/);
});

test('runUdpexposerCommand: a wildcard-bound server refuses loopback peers unless --allow-loopback-peers', async (t) => {
  for (const allow of [false, true]) {
    const ac = new AbortController();
    t.after(() => ac.abort());
    let ready: UdpexposerReady | undefined;
    const done = runUdpexposerCommand(['0.0.0.0:0', '-s', ...(allow ? ['--allow-loopback-peers'] : [])], {
      stdout: sink(), stderr: sink(), signal: ac.signal, clock: systemClock, onReady: (r) => void (ready = r),
    });
    await waitFor(() => ready !== undefined, 5000);
    const server = ready!.role === 'server' ? ready!.server : undefined;
    const peer = await udpPeer(t);
    peer.send(Buffer.alloc(0), ready!.local.port); // a keepalive from 127.0.0.1
    await waitFor(() => server!.counters.keepalives + server!.counters.dropped['peer-denied'] === 1, 5000);
    assert.equal(server!.client !== undefined, allow, allow ? 'registered' : 'refused');
    assert.equal(server!.counters.dropped['peer-denied'], allow ? 0 : 1);
    ac.abort();
    assert.equal(await done, 0);
  }
});

test('runUdpexposerCommand: --datapath picks the datapath of both roles and says which one runs', async () => {
  for (const kind of ['js', 'native'] as const) {
    const ac = new AbortController();
    const err = sink();
    let ready: UdpexposerReady | undefined;
    const code = await runUdpexposerCommand(['127.0.0.1:0', '-s', '--datapath', kind], {
      stdout: sink(), stderr: err, signal: ac.signal, clock: systemClock, onReady: (r) => { ready = r; ac.abort(); },
    });
    assert.equal(code, 0);
    assert.equal(ready?.role === 'server' && ready.server.datapath, kind);
    assert.match(err.text, new RegExp(`server on 127\\.0\\.0\\.1:\\d+, UDP datapath ${kind}`));
    assert.equal(JSON.parse(/stopped (\{.*\})/.exec(err.text)![1]!).datapath, kind);
  }
  const parsed = parseUdpexposerArgs(['127.0.0.1:1', '-c', '127.0.0.1:2', '-a', '127.0.0.1:3', '--datapath=js']);
  assert.ok(parsed !== 'help' && parsed.datapath === 'js' && parsed.ignored.length === 0, 'a client flag too');
});

test('runUdpexposerCommand: --batch-delay-us on native: both roles batch a paced stream, every datagram comes back in order, and the exit counters say how often they waited', async (t) => {
  const parsed = parseUdpexposerArgs(['127.0.0.1:1', '-c', '127.0.0.1:2', '-a', '127.0.0.1:3', '--batch-delay-us=250']);
  assert.ok(parsed !== 'help' && parsed.batchDelayUs === 250 && parsed.ignored.length === 0, 'a flag of both roles');
  const echo = await echoServer(t);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const sErr = sink();
  const cErr = sink();
  const cOut = sink();
  let server: UdpexposerReady | undefined;
  const serverDone = runUdpexposerCommand(['127.0.0.1:0', '-s', '--datapath', 'native', '--batch-delay-us', '2000', '--allow-loopback-peers'], {
    stdout: sink(), stderr: sErr, signal: ac.signal, clock: systemClock, onReady: (r) => void (server = r),
  });
  await waitFor(() => server !== undefined, 5000);
  const clientDone = runUdpexposerCommand(
    ['127.0.0.1:0', '-c', `127.0.0.1:${echo.port}`, '-a', `127.0.0.1:${server!.local.port}`, '--datapath', 'native', '--batch-delay-us', '2000'],
    { stdout: cOut, stderr: cErr, signal: ac.signal, clock: systemClock },
  );
  await waitFor(() => server!.role === 'server' && server!.server.client !== undefined, 5000);
  assert.match(sErr.text, /UDP datapath native, batch delay 2000 µs/);
  const pub = await udpPeer(t);
  // A burst, then a paced stream from the connectee: the relays sleep between batches, and the last
  // datagram still comes back with nothing after it.
  const sent = Array.from({ length: 200 }, (_, i) => Buffer.from(`datagram ${i} `.padEnd(64, '.')));
  for (let i = 0; i < 100; i++) pub.send(sent[i]!, server!.local.port);
  for (let i = 100; i < 200; i++) {
    pub.send(sent[i]!, server!.local.port);
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  const back: Buffer[] = [];
  for (let i = 0; i < 200; i++) back.push((await pub.next(5000)).msg);
  assert.deepEqual(back, sent, 'every datagram, same bytes, same order');
  ac.abort();
  assert.deepEqual(await Promise.all([serverDone, clientDone]), [0, 0]);
  const sStats = JSON.parse(/stopped (\{.*\})/.exec(sErr.text)![1]!);
  const cStats = JSON.parse(/stopped (\{.*\})/.exec(cErr.text)![1]!);
  assert.equal(sStats.batchDelayUs, 2000);
  assert.equal(sStats.fromConnectees.datagrams, 200);
  assert.equal(sStats.toConnectees.datagrams, 200);
  assert.equal(cStats.toTarget.datagrams, 200);
  assert.equal(cStats.fromTarget.datagrams, 200);
  assert.ok(sStats.batchDelays + cStats.batchDelays > 0, 'the relays waited for batches to fill');
});

test('udpexposer flags: --batch-delay-us auto is the default; 0 turns the delay off', () => {
  const auto = parseUdpexposerArgs(['127.0.0.1:1', '-s', '--batch-delay-us', 'auto']);
  assert.ok(auto !== 'help' && auto.batchDelayUs === 'auto');
  const off = parseUdpexposerArgs(['127.0.0.1:1', '-s', '--batch-delay-us=0']);
  assert.ok(off !== 'help' && off.batchDelayUs === 0);
  assert.throws(() => parseUdpexposerArgs(['127.0.0.1:1', '-s', '--batch-delay-us', 'Auto']), /--batch-delay-us: "Auto" is not a non-negative integer/);
});

test('runUdpexposerCommand: by default on native the delay engages while a stream is fast and disengages when it slows (the exit counters)', async (t) => {
  const echo = await echoServer(t);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const sErr = sink();
  const cErr = sink();
  let server: UdpexposerReady | undefined;
  const serverDone = runUdpexposerCommand(['127.0.0.1:0', '-s', '--datapath', 'native', '--allow-loopback-peers'], {
    stdout: sink(), stderr: sErr, signal: ac.signal, clock: systemClock, onReady: (r) => void (server = r),
  });
  await waitFor(() => server !== undefined, 5000);
  const clientDone = runUdpexposerCommand(['127.0.0.1:0', '-c', `127.0.0.1:${echo.port}`, '-a', `127.0.0.1:${server!.local.port}`, '--datapath', 'native'], {
    stdout: sink(), stderr: cErr, signal: ac.signal, clock: systemClock,
  });
  await waitFor(() => server!.role === 'server' && server!.server.client !== undefined, 5000);
  assert.match(sErr.text, /UDP datapath native, batch delay auto \(up to 500 µs from 8000 datagrams\/s\)/);
  const pub = await udpPeer(t);
  let sent = 0;
  const one = () => void pub.send(Buffer.from(`datagram ${sent++} `.padEnd(64, '.')), server!.local.port);
  // Slow first (a datagram every 10 ms: never held), then fast (bursts of 20 about every ms: above
  // the floor even if the timers run late; small enough for the echo service, a dgram socket in
  // this process, whose loop the relays' sleeps block), then slow again.
  for (let i = 0; i < 10; i++, await sleep(10)) one();
  for (let i = 0; i < 40; i++, await sleep(1)) for (let k = 0; k < 20; k++) one();
  for (let i = 0; i < 10; i++, await sleep(20)) one();
  for (let i = 0; i < sent; i++) await pub.next(5000);
  ac.abort();
  assert.deepEqual(await Promise.all([serverDone, clientDone]), [0, 0]);
  const sStats = JSON.parse(/stopped (\{.*\})/.exec(sErr.text)![1]!);
  const cStats = JSON.parse(/stopped (\{.*\})/.exec(cErr.text)![1]!);
  assert.equal(sStats.batchDelayUs, 'auto');
  assert.equal(sStats.toConnectees.datagrams, sent, 'every datagram came back');
  for (const [role, st] of [['server', sStats], ['client', cStats]] as const) {
    assert.ok(st.batchDelayEngaged >= 1, `${role}: engaged ${st.batchDelayEngaged} times`);
    assert.ok(st.batchDelayDisengaged >= 1, `${role}: disengaged ${st.batchDelayDisengaged} times`);
  }
});

test('runUdpexposerCommand: --batch-delay-us on the js datapath says it has no effect', async () => {
  const ac = new AbortController();
  const err = sink();
  const code = await runUdpexposerCommand(['127.0.0.1:0', '-s', '--datapath', 'js', '--batch-delay-us', '100'], {
    stdout: sink(), stderr: err, signal: ac.signal, clock: systemClock, onReady: () => ac.abort(),
  });
  assert.equal(code, 0);
  assert.match(err.text, /--batch-delay-us has no effect on the js datapath/);
  assert.equal(JSON.parse(/stopped (\{.*\})/.exec(err.text)![1]!).batchDelayUs, undefined);
});
