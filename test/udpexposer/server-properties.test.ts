// fast-check over the server logic: arbitrary datagrams from arbitrary sources (the registered
// client's address among them) never throw, never move the client in password mode, and never
// make the server send any source more than its reply budget (64x what that source sent it),
// however often the source speaks; what the server originates stays within 3x.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeFrame, encodeRequestToken, TOKEN_PREFIX_BYTES } from '../../src/protocol/udpexposer/index.js';
import { vectorKey, wire } from '../protocol/udpexposer/helpers.js';
import { A, B, CLIENT, EVIL, recordingServer } from './helpers.js';

const initial = Buffer.from(wire.password_mode.initial_request.token!, 'ascii');
const sources = [A, B, EVIL, CLIENT, { address: '10.0.0.1', port: 53 }, { address: '::ffff:1.0.0.1', port: 5001 }];

const datagram = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  fc.constant(Buffer.alloc(0)),
  fc.constant(initial),
  fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.concat([TOKEN_PREFIX_BYTES, b])),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => encodeRequestToken({ nonce: n }, vectorKey)),
  fc.tuple(fc.integer({ min: 0, max: 5 }), fc.uint8Array({ maxLength: 300 })).map(([t, b]) => encodeFrame(t, b)),
);
const step = fc.record({ from: fc.constantFrom(...sources), buf: datagram });

function registerClient(s: ReturnType<typeof recordingServer>, password: boolean): void {
  if (!password) {
    s.core.handleDatagram(Buffer.alloc(0), CLIENT.address, CLIENT.port);
    return;
  }
  s.core.handleDatagram(initial, CLIENT.address, CLIENT.port);
  const retry = s.take()[0]!.bytes.toString('ascii');
  const digits = /"Retry":(\d+)/.exec(Buffer.from(retry.split('.')[1]!, 'base64url').toString())![1]!;
  s.core.handleDatagram(encodeRequestToken({ nonce: BigInt(digits) }, vectorKey), CLIENT.address, CLIENT.port);
  s.take();
}

for (const password of [false, true]) {
  test(`server never throws, never re-points${password ? '' : ' (except by keepalive)'}, never amplifies past the budget (${password ? 'password' : 'no password'})`, () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const s = recordingServer(password ? { key: vectorKey } : {});
        registerClient(s, password);
        const received = new Map<string, number>();
        // Without a password whoever is (or was) the client gets connectee traffic: the inherent flaw.
        const wasClient = new Set<string>([`${CLIENT.address}|${CLIENT.port}`]);
        for (const { from, buf } of steps) {
          const k = `${from.address.replace('::ffff:', '')}|${from.port}`;
          received.set(k, (received.get(k) ?? 0) + buf.length);
          s.core.handleDatagram(buf, from.address, from.port); // must not throw
          const client = s.core.client;
          if (password) assert.deepEqual(client, { ...CLIENT, authenticated: true });
          else if (buf.length === 0 && from.address !== '10.0.0.1') assert.equal(client?.port, from.port);
          if (client) wasClient.add(`${client.address}|${client.port}`);
          // any source that is not the client: bounded by its reply budget, whatever it did before
          for (const [key, got] of received) {
            const [address, port] = key.split('|') as [string, string];
            if (wasClient.has(key)) continue;
            const sentBack = s.sent.filter((x) => x.address.replace('::ffff:', '') === address && x.port === Number(port)).reduce((n, x) => n + x.bytes.length, 0);
            assert.ok(sentBack <= 64 * got, `${key}: ${sentBack} bytes back for ${got}`);
          }
          const u = s.core.counters.unverifiedReplies;
          assert.ok(u.bytesOut <= 3 * u.bytesIn, `originated ${u.bytesOut} for ${u.bytesIn}`);
        }
        assert.equal(s.core.counters.dropped['peer-denied'] >= steps.filter((x) => x.from.address === '10.0.0.1').length, true);
      }),
      { numRuns: 300 },
    );
  });
}
