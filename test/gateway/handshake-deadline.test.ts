// The gateway's handshake deadlines run on the injected clock: a connection that never
// authenticates is closed when the clock says so, and a refused one is destroyed a second after
// the refusal if the agent never closes its side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { AuthBackoff } from '../../src/gateway/auth-backoff.js';
import { runGatewayHandshake, type HandshakeOutcome } from '../../src/gateway/handshake.js';
import { ControlFrameReader, encodeControlMessage, type ControlMessage } from '../../src/protocol/tunnel/index.js';
import { ControlChannel } from '../../src/upstream/agent/control-channel.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { duplexOf } from '../helpers/pipes.js';

const TIMEOUT_MS = 5000;

/** The gateway's end over in-memory pipes; the agent's end is `toGateway` and `fromGateway`, and never closes. */
function gatewayEnd(clock: ManualClock) {
  const toGateway = new PassThrough();
  const fromGateway = new PassThrough();
  const socket = duplexOf(toGateway, fromGateway);
  const channel = new ControlChannel(socket, 'gateway', clock);
  const reader = new ControlFrameReader();
  const received: ControlMessage[] = [];
  fromGateway.on('data', (c: Buffer) => received.push(...reader.push(c)));
  let outcome: HandshakeOutcome | undefined;
  const done = runGatewayHandshake(channel, {
    clock,
    timeoutMs: TIMEOUT_MS,
    backoff: new AuthBackoff({ after: 3, initialMs: 1000, maxMs: 60_000 }, clock),
    credentials: () => undefined,
    source: '192.0.2.9',
  }).then((o) => (outcome = o));
  return { socket, channel, toGateway, received, done, outcome: () => outcome };
}

const turn = () => new Promise((r) => setImmediate(r));

test('a connection that never says HELLO is closed at the handshake deadline of the injected clock', async () => {
  const clock = new ManualClock();
  const g = gatewayEnd(clock);
  clock.advance(TIMEOUT_MS - 1);
  await turn();
  assert.equal(g.outcome(), undefined, 'still waiting 1 ms before the deadline');
  assert.equal(g.socket.destroyed, false);
  clock.advance(1);
  await g.done;
  assert.deepEqual(
    { ok: g.outcome()?.ok, failure: (g.outcome() as { failure?: string }).failure },
    { ok: false, failure: 'handshake-timeout' },
  );
  assert.equal(g.socket.destroyed, true);
  assert.deepEqual(await g.channel.ended, { sent: 'protocol-error' });
  assert.equal(clock.pendingTimers, 0, 'nothing is left on the clock');
});

test('a refused HELLO ends the gateway side at once and destroys the socket one clock second later', async () => {
  const clock = new ManualClock();
  const g = gatewayEnd(clock);
  g.toGateway.write(encodeControlMessage({ type: 'hello', version: 99, name: 'home', datagramKeyId: 1, resumeKeyId: 0, streamWindow: 65536 }));
  await g.done;
  assert.deepEqual(
    { ok: g.outcome()?.ok, failure: (g.outcome() as { failure?: string }).failure },
    { ok: false, failure: 'unsupported-version' },
  );
  await turn();
  assert.deepEqual(g.received.map((m) => m.type === 'goaway' && m.code), ['unsupported-version'], 'the agent is told why, in a GOAWAY');
  assert.equal(g.socket.writableEnded, true, 'our side is ended at once');
  clock.advance(999);
  assert.equal(g.socket.destroyed, false, 'the agent still has a second to read the refusal');
  clock.advance(1);
  assert.equal(g.socket.destroyed, true, 'an agent that never closes does not hold the socket');
  assert.deepEqual(await g.channel.ended, { sent: 'unsupported-version' });
  assert.equal(clock.pendingTimers, 0);
});
