// Replays corpus/*.hex: signed and unsigned token edge cases (serde and jwt-crate behaviour) and
// any counterexample fast-check finds. File name: <ok|reject>--<name>.hex; "# verify: request|reply"
// says which verifier, "# result:" the expected claims (nonce=N, registered, retry=N) or reject reason.
// Every file is also fed to every other decoder, where nothing may throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import {
  classifyServerDatagram, decodeFrame, verifyReplyToken, verifyRequestToken, verifyToken,
  type ReplyClaims, type RequestClaims, type TokenVerified,
} from '../../../src/protocol/udpexposer/index.js';
import { corpusDir, vectorKey } from './helpers.js';

interface Entry { file: string; expect: 'ok' | 'reject'; verify: 'request' | 'reply'; result: string; bytes: Buffer }

const corpus: Entry[] = readdirSync(corpusDir)
  .filter((f) => f.endsWith('.hex'))
  .sort()
  .map((file) => {
    const lines = readFileSync(`${corpusDir}${file}`, 'utf8').split('\n');
    const meta = (k: string) => lines.find((l) => l.startsWith(`# ${k}:`))?.slice(k.length + 3).trim() ?? '';
    return {
      file,
      expect: file.split('--')[0] as Entry['expect'],
      verify: meta('verify') as Entry['verify'],
      result: meta('result'),
      bytes: Buffer.from(lines.filter((l) => !l.startsWith('#')).join('').replace(/\s+/g, ''), 'hex'),
    };
  });

function summary(r: TokenVerified<RequestClaims | ReplyClaims>): string {
  if (!r.ok) return r.reason;
  const v = r.value;
  if ('nonce' in v) return `nonce=${v.nonce === null ? 'null' : v.nonce.toString()}`;
  return v.kind === 'registered' ? 'registered' : `retry=${v.value.toString()}`;
}

test('the corpus is there', () => {
  assert.ok(corpus.length >= 20, `${corpus.length} files in ${corpusDir}`);
});

for (const e of corpus) {
  test(`corpus ${e.file}`, () => {
    assert.ok(e.expect === 'ok' || e.expect === 'reject', 'name must start with ok-- or reject--');
    const r = e.verify === 'reply' ? verifyReplyToken(e.bytes, vectorKey) : verifyRequestToken(e.bytes, vectorKey);
    assert.equal(r.ok, e.expect === 'ok');
    assert.equal(summary(r), e.result);
    // every other reader survives the same bytes
    verifyToken(e.bytes, vectorKey);
    verifyReplyToken(e.bytes, vectorKey);
    verifyRequestToken(e.bytes, vectorKey);
    decodeFrame(e.bytes);
    classifyServerDatagram(e.bytes, true);
  });
}
