// Replays corpus/*.hex: interesting inputs, seeds for fuzzing, and counterexamples fast-check found.
// File name: <expect>--<name>.hex, expect = ok | reject | need-more with the options given in an
// optional "# options: {json}" line (defaults otherwise, not final). Other "#" lines are comments;
// the rest is hex, whitespace ignored. Every file is also decoded under a matrix of options, where
// only the typed error may escape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import {
  decodeProxyDatagram,
  decodeProxyHeader,
  encodeProxyHeader,
  ProxyHeaderError,
  type ProxyDecodeOptions,
} from '../../../src/protocol/proxy-protocol/index.js';
import { corpusDir, hex } from './helpers.js';

interface Entry { file: string; expect: 'ok' | 'reject' | 'need-more'; options: ProxyDecodeOptions; bytes: Buffer }

function loadCorpus(): Entry[] {
  return readdirSync(corpusDir)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((file) => {
      const expect = file.split('--')[0] as Entry['expect'];
      assert.ok(['ok', 'reject', 'need-more'].includes(expect), `${file}: name must start with ok--, reject-- or need-more--`);
      const lines = readFileSync(`${corpusDir}${file}`, 'utf8').split('\n');
      const opt = lines.find((l) => l.startsWith('# options:'));
      const options = opt ? (JSON.parse(opt.slice('# options:'.length)) as ProxyDecodeOptions) : {};
      const bytes = hex(lines.filter((l) => !l.startsWith('#')).join(''));
      return { file, expect, options, bytes };
    });
}

const corpus = loadCorpus();

test('the corpus is there', () => {
  assert.ok(corpus.length >= 20, `${corpus.length} corpus files in ${corpusDir}`);
});

for (const e of corpus) {
  test(`corpus ${e.file}`, () => {
    let outcome: string;
    try {
      const r = decodeProxyHeader(e.bytes, e.options);
      outcome = r.kind;
      if (r.kind === 'ok') {
        assert.ok(r.length <= e.bytes.length);
        if (e.options.validateTlvs !== false) {
          const again = decodeProxyHeader(encodeProxyHeader(r.header), { maxV2HeaderBytes: 65_551 });
          assert.equal(again.kind, 'ok');
        }
      }
    } catch (err) {
      if (!(err instanceof ProxyHeaderError)) throw err;
      outcome = 'reject';
    }
    assert.equal(outcome, e.expect);

    for (const version of [1, 2, 'any'] as const) {
      for (const validateTlvs of [true, false]) {
        for (const final of [true, false]) {
          for (const maxV2HeaderBytes of [16, 4096, 65_551]) {
            const options = { version, validateTlvs, final, maxV2HeaderBytes };
            for (const run of [() => decodeProxyHeader(e.bytes, options), () => decodeProxyDatagram(e.bytes, options)]) {
              try {
                run();
              } catch (err) {
                if (!(err instanceof ProxyHeaderError)) throw err;
              }
            }
          }
        }
      }
    }
  });
}
