import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, type Duplex } from 'node:stream';
import { SluiceError, isSluiceError } from '../../src/core/errors.js';
import type { ControlMessage } from '../../src/protocol/tunnel/index.js';
import { PeerStreamOpens } from '../../src/agent/peer-streams.js';
import type { PeerControl } from '../../src/agent/peers-deps.js';
import type { PeerTarget } from '../../src/upstream/peer/peer-dialer.js';

const target: PeerTarget = { name: 'home-ssh', peer: 'home', service: 'ssh', path: 'auto' };

/** A control channel whose stream `id` opens or fails when the test says; what it sent is kept. */
function control(id: number) {
  const sent: ControlMessage[] = [];
  let settle!: { ok: (s: Duplex) => void; fail: (e: Error) => void };
  const c: PeerControl = {
    send: (m) => void sent.push(m),
    openStream: (_opts, beforeOpen) =>
      new Promise<Duplex>((ok, fail) => {
        beforeOpen(id);
        settle = { ok, fail };
      }),
  };
  return { c, sent, settle: () => settle };
}

test('PEER_OPEN names the stream id before STREAM_OPEN; the target is known only while it opens', async () => {
  const s = new PeerStreamOpens();
  const { c, sent, settle } = control(7);
  const opening = s.open(c, target, {} as never);
  assert.deepEqual(sent, [{ type: 'peer-open', tag: 7, transport: 'tcp', peer: 'home', service: 'ssh' }]);
  assert.equal(s.target(7), target);
  const stream = new PassThrough();
  settle().ok(stream);
  assert.equal(await opening, stream);
  assert.equal(s.target(7), undefined);
});

test("the gateway's refusal, when one came before the reset, is what open() rejects with", async () => {
  const s = new PeerStreamOpens();
  const { c, settle } = control(9);
  const opening = s.open(c, target, {} as never);
  const refusal = new SluiceError('SLUICE_ERR_PEER_OFFLINE', 'home is not connected');
  s.refused(9, refusal);
  assert.equal(s.target(9), undefined, 'refused: no second refusal counted');
  settle().fail(new Error('stream reset'));
  await assert.rejects(opening, (e) => e === refusal);
  assert.equal(s.target(9), undefined);

  const other = control(10);
  const plain = s.open(other.c, target, {} as never);
  other.settle().fail(new SluiceError('SLUICE_ERR_DIAL_FAILED', 'reset'));
  await assert.rejects(plain, (e) => isSluiceError(e, 'SLUICE_ERR_DIAL_FAILED'));
});
