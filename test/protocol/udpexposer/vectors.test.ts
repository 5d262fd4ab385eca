// Replays every frame and token of ../shared/vectors/udpexposer/wire.json (udpexposer 0.3.0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyServerDatagram, decodeFrame, decodeReplyClaims, decodeRequestClaims, encodeFrame, encodeReplyClaims,
  encodeReplyToken, encodeRequestClaims, encodeRequestToken, signToken, STATS_NONCE, TOKEN_HEADER_B64,
  TOKEN_PREFIX, UdpexposerKey, verifyReplyToken, verifyRequestToken,
} from '../../../src/protocol/udpexposer/index.js';
import { vectorKey, wire } from './helpers.js';

const np = wire.no_password;
const pw = wire.password_mode;

test('no-password keepalive is the empty datagram', () => {
  const ka = Buffer.from(np.keepalive_client_to_server_hex, 'hex');
  assert.equal(ka.length, 0);
  assert.equal(classifyServerDatagram(ka, false), 'keepalive');
  assert.equal(classifyServerDatagram(ka, true), 'data');
});

test('server -> client frame: tag 1 and the connectee payload', () => {
  const bytes = Buffer.from(np.server_to_client_hex, 'hex');
  assert.deepEqual(encodeFrame(1, Buffer.from(np.connectee_to_server_payload_ascii, 'ascii')), bytes);
  const d = decodeFrame(bytes);
  assert.equal(d.kind, 'ok');
  if (d.kind !== 'ok') return;
  assert.equal(d.value.tag, 1);
  assert.equal(d.value.payload.toString('ascii'), np.connectee_to_server_payload_ascii);
});

test('client -> server frame: tag stripped, rest goes to the connectee', () => {
  const bytes = Buffer.from(np.client_to_server_hex, 'hex');
  assert.deepEqual(encodeFrame(1, Buffer.from(np.server_to_connectee_ascii, 'ascii')), bytes);
  const d = decodeFrame(bytes);
  assert.ok(d.kind === 'ok');
  assert.equal(d.value.tag, 1);
  assert.equal(d.value.payload.toString('ascii'), np.server_to_connectee_ascii);
});

test('a tag-only frame carries an empty payload', () => {
  const bytes = Buffer.from(np.client_to_server_tag_only_hex, 'hex');
  assert.deepEqual(encodeFrame(1, Buffer.alloc(0)), bytes);
  const d = decodeFrame(bytes);
  assert.ok(d.kind === 'ok');
  assert.equal(d.value.payload.length, np.server_to_connectee_len);
  assert.deepEqual(decodeFrame(bytes.subarray(0, 1)), { kind: 'too-short' });
});

test('Argon2i of "test-password" gives the published HMAC key', async () => {
  const key = await UdpexposerKey.fromPassword(pw.password);
  assert.equal(key.exportBytes().toString('hex'), pw.hmac_key_hex);
  assert.equal(String(key), '[UdpexposerKey]');
  assert.equal(JSON.stringify({ key }), '{"key":"[UdpexposerKey]"}');
});

test('the fixed JWS header', () => {
  assert.equal(Buffer.from(pw.jwt_header_json).toString('base64url'), pw.jwt_header_b64url);
  assert.equal(TOKEN_HEADER_B64, pw.jwt_header_b64url);
  assert.equal(TOKEN_PREFIX, `${pw.jwt_header_b64url}.`);
});

const requests = [
  ['initial_request', pw.initial_request, null],
  ['echo_request_example', pw.echo_request_example, 18446744073709551000n],
] as const;

for (const [name, v, nonce] of requests) {
  test(`request token ${name}: encode is byte-exact, verify gives the nonce`, () => {
    assert.equal(encodeRequestClaims({ nonce }), v.claims_json);
    assert.equal(encodeRequestToken({ nonce }, vectorKey).toString('ascii'), v.token);
    assert.equal(signToken(v.claims_json, vectorKey), v.token);
    const r = verifyRequestToken(Buffer.from(v.token!, 'ascii'), vectorKey);
    assert.deepEqual(r, { ok: true, value: { nonce } });
    assert.equal(classifyServerDatagram(Buffer.from(v.token!), true), 'token');
  });
}

test('reply token Retry: u64 above 2^53 survives digit for digit', () => {
  const v = pw.retry_reply;
  const value = 17558671654549087794n;
  assert.ok(value > BigInt(Number.MAX_SAFE_INTEGER));
  assert.equal(encodeReplyClaims({ kind: 'retry', value }), v.claims_json);
  assert.equal(encodeReplyToken({ kind: 'retry', value }, vectorKey).toString('ascii'), v.token);
  assert.deepEqual(verifyReplyToken(Buffer.from(v.token!), vectorKey), { ok: true, value: { kind: 'retry', value } });
  assert.deepEqual(decodeReplyClaims(v.claims_json), { ok: true, value: { kind: 'retry', value } });
});

test('reply token Registered', () => {
  const v = pw.registered_reply;
  assert.equal(encodeReplyClaims({ kind: 'registered' }), v.claims_json);
  assert.equal(encodeReplyToken({ kind: 'registered' }, vectorKey).toString('ascii'), v.token);
  assert.deepEqual(verifyReplyToken(Buffer.from(v.token!), vectorKey), { ok: true, value: { kind: 'registered' } });
});

test('stats request claims carry u64::MAX', () => {
  const v = pw.stats_request;
  assert.equal(encodeRequestClaims({ nonce: STATS_NONCE }), v.claims_json);
  assert.deepEqual(decodeRequestClaims(v.claims_json), { ok: true, value: { nonce: STATS_NONCE } });
  assert.deepEqual(verifyRequestToken(encodeRequestToken({ nonce: STATS_NONCE }, vectorKey), vectorKey), { ok: true, value: { nonce: STATS_NONCE } });
});

test('tokens do not verify under another password, nor as the other direction', async () => {
  const other = await UdpexposerKey.fromPassword('wrong-password');
  assert.notEqual(other.exportBytes().toString('hex'), pw.hmac_key_hex);
  for (const v of [pw.initial_request, pw.echo_request_example]) {
    assert.deepEqual(verifyRequestToken(Buffer.from(v.token!), other), { ok: false, reason: 'bad-signature' });
    assert.deepEqual(verifyReplyToken(Buffer.from(v.token!), vectorKey), { ok: false, reason: 'bad-claims' });
  }
  for (const v of [pw.retry_reply, pw.registered_reply]) {
    assert.deepEqual(verifyReplyToken(Buffer.from(v.token!), other), { ok: false, reason: 'bad-signature' });
  }
  assert.deepEqual(verifyRequestToken(Buffer.from(pw.registered_reply.token!), vectorKey), { ok: false, reason: 'bad-claims' });
  // serde reads {"Retry":N} as a Request with an unknown member and no nonce, i.e. nonce null;
  // so does this codec. Harmless: {"nonce":null} is itself a constant, replayable token.
  assert.deepEqual(verifyRequestToken(Buffer.from(pw.retry_reply.token!), vectorKey), { ok: true, value: { nonce: null } });
});
