import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import {
  decodeTrunkFrame, encodeDataHello, encodeTrunkFrame, encodeTrunkHello, isTrunkHello, readTrunkHello, recordNonce, verifyDataHello, TRUNK_RECORD_TYPE, TunnelError,
} from '../../../src/protocol/tunnel/index.js';
import { GOLDEN_TRUNK } from './trunk-golden.js';

/**
 * The trunk's frames (docs/tunnel-protocol.md, "Trunks"). The golden records were computed with
 * Python's `cryptography` (AESGCM), independently of node:crypto and of the engine, from the same
 * key and iv as the data connection's golden records.
 */

const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const IV = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex');

/** A TRUNK record around `plain` (node:crypto; the golden hex below checks it). */
function sealTrunk(seq: number, plain: Buffer): Buffer {
  const header = Buffer.from([TRUNK_RECORD_TYPE, plain.length >> 16, (plain.length >> 8) & 255, plain.length & 255]);
  const c = createCipheriv('aes-128-gcm', KEY, recordNonce(IV, seq));
  c.setAAD(header);
  return Buffer.concat([header, c.update(plain), c.final(), c.getAuthTag()]);
}


test('golden: the frames of each kind, sealed as TRUNK records', () => {
  const data = encodeTrunkFrame({ kind: 'data', stream: 7, data: Buffer.from('hi') });
  assert.equal(data.toString('hex'), '000000070168' + '69');
  assert.equal(sealTrunk(0, data).toString('hex'), GOLDEN_TRUNK.dataHi);
  assert.equal(sealTrunk(1, encodeTrunkFrame({ kind: 'end', stream: 7 })).toString('hex'), GOLDEN_TRUNK.end);
  const credit = encodeTrunkFrame({ kind: 'credit', stream: 7, increment: 65536 });
  assert.equal(credit.toString('hex'), '000000070400010000');
  assert.equal(sealTrunk(2, credit).toString('hex'), GOLDEN_TRUNK.credit);
  assert.equal(sealTrunk(3, encodeTrunkFrame({ kind: 'reset', stream: 9 })).toString('hex'), GOLDEN_TRUNK.reset);
  assert.equal(encodeTrunkFrame({ kind: 'ready', stream: 7 }).toString('hex'), '0000000705');
  assert.equal(sealTrunk(4, encodeTrunkFrame({ kind: 'ready', stream: 7 })).toString('hex'), GOLDEN_TRUNK.ready);
  assert.equal(sealTrunk(0, encodeTrunkFrame({ kind: 'ready', stream: 7 })).toString('hex'), GOLDEN_TRUNK.ready0);
});

test('decode: each kind back, and what is malformed is named', () => {
  assert.deepEqual(decodeTrunkFrame(Buffer.from('000000070168', 'hex')), { kind: 'data', stream: 7, data: Buffer.from('h') });
  assert.deepEqual(decodeTrunkFrame(Buffer.from('ffffffff02', 'hex')), { kind: 'end', stream: 0xffffffff });
  assert.deepEqual(decodeTrunkFrame(Buffer.from('0000000903', 'hex')), { kind: 'reset', stream: 9 });
  assert.deepEqual(decodeTrunkFrame(Buffer.from('000000070400000001', 'hex')), { kind: 'credit', stream: 7, increment: 1 });
  const bad = (hex: string, what: RegExp) => assert.throws(() => decodeTrunkFrame(Buffer.from(hex, 'hex')), (e: unknown) => e instanceof TunnelError && e.reason === 'malformed' && what.test(e.message));
  bad('00000007', /at least 5 bytes/);
  bad('0000000701', /DATA frame without bytes/);
  bad('000000070200', /END frame with 1 body bytes/);
  bad('000000070400000000', /CREDIT/);
  bad('000000070480000000', /CREDIT/);
  bad('0000000704000001', /CREDIT/);
  assert.deepEqual(decodeTrunkFrame(Buffer.from('0000000705', 'hex')), { kind: 'ready', stream: 7 });
  bad('000000070500', /READY frame with 1 body bytes/);
  bad('0000000706', /kind 6 is not defined/);
  assert.throws(() => encodeTrunkFrame({ kind: 'data', stream: 1, data: Buffer.alloc(65532) }), /1\.\.65531/);
  assert.throws(() => encodeTrunkFrame({ kind: 'credit', stream: 1, increment: 0 }), /CREDIT increment 0/);
  assert.throws(() => encodeTrunkFrame({ kind: 'end', stream: -1 }), /not a u32/);
});

test('hello: a data hello with the magic SLT1, verified the same way', () => {
  const token = Buffer.alloc(16, 0x11);
  const data = encodeDataHello(token, 7, KEY, IV);
  const hello = encodeTrunkHello(token, 7, KEY, IV);
  assert.equal(hello.toString('hex'), '534c5431' + data.subarray(4).toString('hex'));
  assert.ok(isTrunkHello(hello));
  assert.ok(!isTrunkHello(data));
  const h = readTrunkHello(hello);
  assert.equal(h.counter, 7);
  assert.deepEqual(h.token, token);
  assert.ok(verifyDataHello(h, KEY, IV));
  assert.throws(() => readTrunkHello(data), /not a trunk hello/);
});
