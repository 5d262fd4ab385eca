import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { perStreamDatapath } from '../datapath/stream-datapaths.js';
import { tcpConnect, waitFor } from '../helpers/net.js';
import { duplexOf } from '../helpers/pipes.js';
import type { TestContext } from 'node:test';
import { SluiceError } from '../../src/core/errors.js';
import { systemClock } from '../../src/core/clock.js';
import { TcpRoute } from '../../src/listen/tcp-route.js';
import { EventStream, type SluiceEvent } from '../../src/observe/events.js';
import { config } from '../helpers/node.js';
import type { StreamDialer } from '../../src/upstream/dialer.js';

// A dialer whose upstream takes bytes before it answers (an agent's tunnel stream): the route
// relays at once and reports the session only when the upstream accepts.
const { test, datapathOf } = perStreamDatapath();

/** The route alone (a RouteSet wraps dialers for pools; the gateway hands the agent's dialer straight to its routes). */
async function startNode(t: TestContext, yaml: string, deps: { streamDialer: StreamDialer }) {
  const events = new EventStream((err) => {
    throw err;
  });
  const seen: SluiceEvent[] = [];
  events.subscribe((e) => seen.push(e));
  let flow = 0;
  const r = await TcpRoute.start(config(yaml).routes[0]!, { clock: systemClock, events, nextFlowId: () => ++flow, dialer: deps.streamDialer, streamDatapath: datapathOf(t) });
  t.after(() => r.close('shutdown'));
  const ofType = <K extends SluiceEvent['type']>(type: K) => seen.filter((e): e is Extract<SluiceEvent, { type: K }> => e.type === type);
  return { node: { route: (_name: string) => r }, port: (_name: string) => r.local.port, ofType };
}

const route = `
routes:
  svc:
    listen: tcp://127.0.0.1:0
    upstream: 127.0.0.1:9
`;

/** An early dialer: what the route writes lands in `toUpstream`; `settle` answers the open. */
function earlyDialer() {
  const opens: { toUpstream: PassThrough; fromUpstream: PassThrough; settle: (err?: SluiceError) => void }[] = [];
  const dialer: StreamDialer = {
    dial: () => Promise.reject(new Error('dial() must not be used when dialEarly is there')),
    dialEarly: (_target, _opts, settled) => {
      const toUpstream = new PassThrough();
      const fromUpstream = new PassThrough();
      opens.push({ toUpstream, fromUpstream, settle: settled });
      return { stream: duplexOf(fromUpstream, toUpstream), remote: { address: '192.0.2.1', port: 7, family: 4 } };
    },
  };
  return { dialer, opens };
}

function collected(p: PassThrough): { bytes: () => string } {
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  return { bytes: () => Buffer.concat(chunks).toString() };
}

test('early dial: the client bytes reach the upstream before it accepts; the session starts at the accept', async (t) => {
  const { dialer, opens } = earlyDialer();
  const n = await startNode(t, route, { streamDialer: dialer });
  const c = await tcpConnect(t, n.port('svc'));
  c.write('GET / early');
  await waitFor(() => opens.length === 1, 'opened');
  const up = collected(opens[0]!.toUpstream);
  await waitFor(() => up.bytes() === 'GET / early', 'first bytes at the upstream before its answer');
  assert.equal(n.ofType('session-started').length, 0, 'not started before the accept');
  assert.equal(n.node.route('svc')!.sessions()[0]!.state, 'dialing');
  opens[0]!.settle();
  assert.equal(n.ofType('session-started').length, 1);
  assert.equal(n.ofType('dial-ok').length, 1);
  opens[0]!.fromUpstream.write('answer');
  const [reply] = (await once(c, 'data')) as [Buffer];
  assert.equal(String(reply), 'answer');
  c.resetAndDestroy();
  await waitFor(() => n.ofType('session-ended').length === 1, 'session ended');
  assert.equal(n.ofType('session-ended')[0]!.counters.bytesFromClient, 11);
});

test('early dial: refused after the client sent bytes: the client is reset, a dial-error is recorded, no session', async (t) => {
  const { dialer, opens } = earlyDialer();
  const n = await startNode(t, route, { streamDialer: dialer });
  const c = await tcpConnect(t, n.port('svc'));
  c.write('lost request');
  await waitFor(() => opens.length === 1, 'opened');
  const up = collected(opens[0]!.toUpstream);
  await waitFor(() => up.bytes().length > 0, 'bytes taken from the client');
  const closed = new Promise((r) => c.once('close', r));
  let error: (Error & { code?: string }) | undefined;
  c.on('error', (e) => (error = e));
  let ended = false;
  c.on('end', () => (ended = true));
  opens[0]!.settle(new SluiceError('SLUICE_ERR_DIAL_FAILED', 'the agent could not reach the local service (refused)'));
  await closed;
  assert.equal(error?.code, 'ECONNRESET', 'a reset, not a FIN that would look like the service answering');
  assert.equal(ended, false);
  const de = n.ofType('dial-error');
  assert.equal(de.length, 1);
  assert.equal(de[0]!.code, 'SLUICE_ERR_DIAL_FAILED');
  await waitFor(() => n.node.route('svc')!.active === 0, 'forgotten');
  assert.equal(n.ofType('session-started').length, 0);
  assert.equal(n.ofType('session-ended').length, 0);
});

test('early dial: refused before the client sent anything: the client gets a FIN', async (t) => {
  const { dialer, opens } = earlyDialer();
  const n = await startNode(t, route, { streamDialer: dialer });
  const c = await tcpConnect(t, n.port('svc'));
  c.resume();
  await waitFor(() => opens.length === 1, 'opened');
  const ended = once(c, 'end');
  opens[0]!.settle(new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', 'timed out'));
  await ended;
  assert.equal(n.ofType('dial-error')[0]!.code, 'SLUICE_ERR_DIAL_TIMEOUT');
  await waitFor(() => n.node.route('svc')!.active === 0, 'forgotten');
  assert.equal(n.ofType('session-ended').length, 0);
});

test('early dial: a client that resets before the accept ends the open quietly: no dial-error, no session', async (t) => {
  const { dialer, opens } = earlyDialer();
  const n = await startNode(t, route, { streamDialer: dialer });
  const c = await tcpConnect(t, n.port('svc'));
  await waitFor(() => opens.length === 1, 'opened');
  c.resetAndDestroy();
  await waitFor(() => n.node.route('svc')!.active === 0, 'forgotten');
  opens[0]!.settle(new SluiceError('SLUICE_ERR_DIAL_FAILED', 'the stream closed before the agent accepted it'));
  opens[0]!.settle(); // a late answer changes nothing
  assert.equal(n.ofType('dial-error').length, 0);
  assert.equal(n.ofType('session-started').length, 0);
  assert.equal(n.ofType('session-ended').length, 0);
});
