import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dataKeysFromMaterial, encodeDataHello, exportDataKeys, exportDataToken, readDataHello, RecordReader, RecordSealer, verifyDataHello,
} from '../../../src/protocol/tunnel/index.js';
import { makeTestCertificate, tlsPair } from './tls-pair.js';

/** Data connection keys from a real TLS 1.3 session: both ends agree, counters and roles differ. */

const creds = makeTestCertificate();
const skip = creds ? false : 'openssl CLI not available to make a test certificate';

test('both ends derive the same token and mirrored keys; another counter gives other keys', { skip }, async (t) => {
  const { agent, gateway } = await tlsPair(t, creds!);
  assert.deepEqual(exportDataToken(agent), exportDataToken(gateway));
  assert.equal(exportDataToken(agent).length, 16);
  const a = exportDataKeys(agent, 3, 'agent');
  const g = exportDataKeys(gateway, 3, 'gateway');
  assert.deepEqual([a.sealKey, a.sealIv, a.openKey, a.openIv], [g.openKey, g.openIv, g.sealKey, g.sealIv]);
  assert.deepEqual([a.sealSeq, a.openSeq, g.sealSeq, g.openSeq], [1, 0, 0, 1]);
  assert.notDeepEqual(a.sealKey, a.openKey);
  assert.notDeepEqual(exportDataKeys(agent, 4, 'agent').sealKey, a.sealKey);
  // The agent's hello opens at the gateway with the keys of its counter, and records flow both ways.
  const hello = readDataHello(encodeDataHello(exportDataToken(agent), 3, a.sealKey, a.sealIv));
  assert.deepEqual(hello.token, exportDataToken(gateway));
  assert.equal(verifyDataHello(hello, g.openKey, g.openIv), true);
  assert.equal(verifyDataHello(hello, exportDataKeys(gateway, 4, 'gateway').openKey, g.openIv), false);
  const up = new RecordSealer(a.sealKey, a.sealIv, a.sealSeq).data(Buffer.from('to the gateway'));
  assert.equal((new RecordReader(g.openKey, g.openIv, g.openSeq).push(up[0]!)[0] as { data: Buffer }).data.toString(), 'to the gateway');
  const down = new RecordSealer(g.sealKey, g.sealIv, g.sealSeq).data(Buffer.from('to the agent'));
  assert.equal((new RecordReader(a.openKey, a.openIv, a.openSeq).push(down[0]!)[0] as { data: Buffer }).data.toString(), 'to the agent');
});

test('a TLS 1.2 session gives no data keys', { skip }, async (t) => {
  const { agent } = await tlsPair(t, creds!, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
  assert.throws(() => exportDataToken(agent), /TLSv1.3/);
  assert.throws(() => dataKeysFromMaterial(Buffer.alloc(10), 'agent'), /56 bytes/);
});
