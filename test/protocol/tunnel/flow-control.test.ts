import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_WINDOW_BYTES, ReceiveWindow, SendWindow } from '../../../src/protocol/tunnel/index.js';
import { assertTunnelError } from './helpers.js';

test('the sender spends credit and regains it from WINDOW_UPDATE; overflow past 2^31-1 is the peer\'s error', () => {
  const s = new SendWindow(100);
  s.consume(60);
  assert.equal(s.available, 40);
  assertTunnelError(() => s.consume(41), 'bad-value');
  assert.equal(s.grant(10), true);
  assert.equal(s.available, 50);
  assert.equal(s.grant(0), false);
  assert.equal(s.grant(MAX_WINDOW_BYTES), false);
  assert.equal(s.available, 50);
  assertTunnelError(() => new SendWindow(0), 'bad-value');
  assertTunnelError(() => new SendWindow(2 ** 31), 'bad-value');
});

test('the receiver batches WINDOW_UPDATE per half window and refuses data beyond its grant', () => {
  const r = new ReceiveWindow(100);
  assert.equal(r.receive(80), true);
  assert.equal(r.buffered, 80);
  assert.equal(r.release(30), 0, 'under half the window: wait');
  assert.equal(r.release(20), 50, 'half reached: return it all');
  assert.equal(r.granted, 70);
  assert.equal(r.buffered, 30);
  assert.equal(r.receive(71), false, 'beyond the credit: flow-control error');
  assert.equal(r.receive(70), true);
  assertTunnelError(() => r.release(101), 'bad-value');
});

test('a custom update threshold of 1 returns credit on every release', () => {
  const r = new ReceiveWindow(10, { updateThreshold: 1 });
  r.receive(3);
  assert.equal(r.release(1), 1);
  assert.equal(r.release(2), 2);
});

/**
 * Model: a sender and a receiver joined by an in-order channel. However the sender chunks data and
 * the application consumes it, the receiver never holds more than its window, never sees a
 * violation, and the stream never stalls for good: all data is delivered once the application drains.
 */
test('fast-check: credit flow never overruns the receive window and never deadlocks', () => {
  const opArb = fc.oneof(
    fc.record({ op: fc.constant('send' as const), n: fc.integer({ min: 1, max: 5000 }) }),
    fc.record({ op: fc.constant('deliver' as const) }),
    fc.record({ op: fc.constant('consume' as const), n: fc.integer({ min: 1, max: 5000 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: 100_000 }), fc.array(opArb, { maxLength: 200 }), (window, total, ops) => {
      const send = new SendWindow(window);
      const recv = new ReceiveWindow(window);
      const dataInFlight: number[] = [];
      const updatesInFlight: number[] = [];
      let unsent = total;
      let delivered = 0;
      let consumed = 0;
      const step = (op: (typeof ops)[number]) => {
        if (op.op === 'send') {
          const n = Math.min(op.n, send.available, unsent);
          if (n > 0) {
            send.consume(n);
            unsent -= n;
            dataInFlight.push(n);
          }
        } else if (op.op === 'deliver') {
          const d = dataInFlight.shift();
          if (d !== undefined) {
            assert.equal(recv.receive(d), true, 'a well-behaved sender never violates the window');
            delivered += d;
          }
          const u = updatesInFlight.shift();
          if (u !== undefined) assert.equal(send.grant(u), true);
        } else {
          const n = Math.min(op.n, recv.buffered);
          if (n > 0) {
            consumed += n;
            const inc = recv.release(n);
            if (inc > 0) updatesInFlight.push(inc);
          }
        }
        assert.ok(recv.buffered <= window);
        assert.equal(recv.buffered, delivered - consumed);
        assert.ok(send.available <= window);
      };
      ops.forEach(step);
      // drain: keep sending, delivering and consuming; everything must arrive
      for (let i = 0; i < 1_000_000 && consumed < total; i++) {
        step({ op: 'send', n: 5000 });
        step({ op: 'deliver' });
        step({ op: 'consume', n: 5000 });
      }
      assert.equal(consumed, total);
    }),
    { numRuns: 300 },
  );
});
