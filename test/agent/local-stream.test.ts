import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ExposeConfig } from '../../src/config/expose-config.js';
import { SluiceError } from '../../src/core/errors.js';
import type { StreamResetCode } from '../../src/protocol/tunnel/index.js';
import { serveLocalStream } from '../../src/agent/local-stream.js';
import { TunnelStream, type StreamLink } from '../../src/upstream/agent/tunnel-stream.js';
import type { DialedConnDone, SocketDialer } from '../../src/upstream/direct/socket-dial.js';
import type { DialedStream, StreamDialer } from '../../src/upstream/dialer.js';
import { DirectStreamDialer } from '../../src/upstream/direct/tcp-dialer.js';
import { readAll, tcpServer } from '../helpers/net.js';

const EP = { address: '192.0.2.7', port: 40000, family: 4 as const };
const OPEN = { type: 'stream-open' as const, streamId: 2, serviceId: 1, client: EP, server: EP };
const CONFIG = { proxyProtocol: 'off', idleTimeoutMs: 0, connectTimeoutMs: 2000 } as unknown as ExposeConfig;

/** A stream whose link records the data, FIN and resets it sends toward the gateway. */
function stream(): { s: TunnelStream; resets: StreamResetCode[]; sent: Buffer[]; ended: () => boolean } {
  const resets: StreamResetCode[] = [];
  const sent: Buffer[] = [];
  let ended = false;
  const link: StreamLink = {
    sendData: (_id, data) => void sent.push(Buffer.from(data)),
    sendEnd: () => void (ended = true),
    sendReset: (_id, code) => void resets.push(code),
    sendWindowUpdate() {},
    whenWritable: (fn) => fn(),
    released() {},
  };
  return { s: new TunnelStream(2, link, 65536, 65536), resets, sent, ended: () => ended };
}

/** A socket dialer that never finishes by itself: the test calls `done` or sees `cancel`. */
function heldDialer() {
  const d = {
    cancelled: 0,
    promised: 0,
    done: undefined as DialedConnDone | undefined,
    dialConn(_t: unknown, _o: unknown, _dp: unknown, done: DialedConnDone) {
      d.done = done;
      return { cancel: () => void d.cancelled++ };
    },
    dial(): Promise<DialedStream> {
      d.promised++;
      return new Promise(() => {});
    },
  };
  return d satisfies SocketDialer & StreamDialer;
}

test('a socket dialer is dialed by callback; a stream gone while it dials cancels the dial and is never accepted', async () => {
  const d = heldDialer();
  const { s } = stream();
  let accepted = 0;
  serveLocalStream(d, CONFIG, { host: '127.0.0.1', port: 9 }, s, OPEN, () => accepted++, () => {}, () => {});
  assert.equal(d.promised, 0, 'no promise dial');
  assert.ok(d.done, 'dialed by callback');
  s.destroy();
  await once(s, 'close');
  assert.equal(d.cancelled, 1);
  assert.equal(accepted, 0);
});

test('a failed callback dial resets the stream with its code (refused, timeout, dial-failed)', () => {
  const cases: [SluiceError, StreamResetCode][] = [
    [new SluiceError('SLUICE_ERR_DIAL_FAILED', 'refused', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }), 'refused'],
    [new SluiceError('SLUICE_ERR_DIAL_TIMEOUT', 'slow'), 'timeout'],
    [new SluiceError('SLUICE_ERR_DIAL_FAILED', 'other', { cause: Object.assign(new Error('x'), { code: 'EHOSTUNREACH' }) }), 'dial-failed'],
  ];
  for (const [err, code] of cases) {
    const d = heldDialer();
    const { s, resets } = stream();
    serveLocalStream(d, CONFIG, { host: '127.0.0.1', port: 9 }, s, OPEN, () => assert.fail('accepted'), () => {}, () => {});
    d.done!(err);
    assert.deepEqual(resets, [code]);
    assert.ok(s.destroyed);
  }
});

test('the real socket dial: accepted, bytes relayed both ways with half-close, the relay reported started and ended', async (t) => {
  const local = await tcpServer(t, (sock) => {
    void readAll(sock).then((got) => sock.end(Buffer.concat([Buffer.from('echo:'), got])));
  });
  const { s, sent, ended } = stream();
  let accepted = 0;
  const stops = new Set<unknown>();
  const done = new Promise<void>((resolve) =>
    serveLocalStream(new DirectStreamDialer(), CONFIG, { host: '127.0.0.1', port: local.port }, s, OPEN, () => accepted++, (stop) => stops.add(stop), (stop) => {
      stops.delete(stop);
      resolve();
    }),
  );
  // The gateway's bytes and FIN, as the multiplexer delivers them.
  s.onPeerData(Buffer.from('hello'));
  s.onPeerEnd();
  await done;
  assert.equal(accepted, 1);
  assert.equal(stops.size, 0);
  assert.equal(Buffer.concat(sent).toString(), 'echo:hello');
  assert.ok(ended(), "the service's FIN went to the gateway as STREAM_END");
});
