// Before authentication a udpexposer server keeps nothing per source: a Retry cookie is stateless
// (retry-cookie.ts), so a flood of initial requests from many addresses, including replays of a
// real client's signed one, creates no state and cannot keep the real client from registering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRequestToken, UdpexposerKey } from '../../src/protocol/udpexposer/index.js';
import type { WireVectors } from '../protocol/udpexposer/helpers.js';
import { vectorText } from '../fuzz/fuzz.js';
import { CLIENT, recordingServer } from './helpers.js';

const wire = JSON.parse(vectorText('udpexposer/wire.json')) as WireVectors;
const vectorKeyForTests = UdpexposerKey.fromBytes(Buffer.from(wire.password_mode.hmac_key_hex, 'hex'));
const initialRequestForTests = Buffer.from(wire.password_mode.initial_request.token!, 'ascii');

test('2,000 initial requests from 250 addresses create no state; the real client registers in one round trip', () => {
  const s = recordingServer({ key: vectorKeyForTests, maxClients: 4 });
  for (let a = 0; a < 250; a++) {
    for (let i = 0; i < 8; i++) s.core.handleDatagram(initialRequestForTests, `1.2.3.${a + 1}`, 40_000 + i);
  }
  assert.equal(s.core.counters.retriesSent, 2000, 'each got its (stateless) Retry');
  assert.equal(s.core.table.size, 0, 'no connectee entries');
  assert.equal(s.core.client, undefined, 'nobody registered');
  s.take();
  s.core.handleDatagram(initialRequestForTests, CLIENT.address, CLIENT.port);
  const retry = s.take()[0]!.bytes.toString('ascii');
  const digits = /"Retry":(\d+)/.exec(Buffer.from(retry.split('.')[1]!, 'base64url').toString())![1]!;
  s.core.handleDatagram(encodeRequestToken({ nonce: BigInt(digits) }, vectorKeyForTests), CLIENT.address, CLIENT.port);
  assert.deepEqual(s.core.client, { address: CLIENT.address, port: CLIENT.port, authenticated: true });
});
