import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { loadNativeBinding, type BindingLoad, type NativeBinding } from '../../src/datapath/native/binding.js';
import { selectStreamDatapath } from '../../src/datapath/native/select-stream.js';
import { jsStreamDatapath } from '../../src/datapath/js-stream-datapath.js';
import { isSluiceError } from '../../src/core/errors.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { nativeStreamCase } from './stream-datapaths.js';

const unavailable = () => ({ ok: false as const, reason: 'not built here' });

test('stream datapath selection: js is js; auto falls back on js with the reason; native refuses to start without the addon', () => {
  assert.equal(selectStreamDatapath('js').datapath, jsStreamDatapath);
  const auto = selectStreamDatapath('auto', { load: unavailable });
  assert.equal(auto.datapath.kind, 'js');
  assert.equal(auto.fallback, 'not built here');
  assert.throws(
    () => selectStreamDatapath('native', { load: unavailable }),
    (err) => isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID') && /native TCP stream datapath is not available: not built here/.test(err.message),
  );
});

test('stream datapath selection: an addon built before the stream engine is a reason, not a crash', () => {
  const old: () => BindingLoad = () => ({ ok: true, binding: {} as NativeBinding, layout: { slotBytes: 65536, rxRecord: 8, txRecord: 12, errRecord: 3, gso: false } });
  const auto = selectStreamDatapath('auto', { load: old });
  assert.equal(auto.datapath.kind, 'js');
  assert.match(auto.fallback ?? '', /built without the stream engine/);
  assert.throws(() => selectStreamDatapath('native', { load: old }), (err) => isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID'));
});

test('stream datapath selection: auto and native use the addon where it loads (under CI=true it must)', (t) => {
  const c = nativeStreamCase();
  if (c.skip) return t.skip(c.skip);
  assert.ok(loadNativeBinding().ok, 'CI=true: the native addon must load');
  for (const choice of ['auto', 'native'] as const) {
    const s = selectStreamDatapath(choice);
    assert.equal(s.datapath.kind, 'native');
    assert.equal(s.fallback, undefined);
  }
});

test('sluice_datapath_info: the UDP series as before, the TCP one with proto="tcp"', async () => {
  const registry = new Registry();
  createMetrics(registry, { datapath: () => 'native', streamDatapath: () => 'js' });
  const text = await registry.metrics();
  assert.match(text, /^sluice_datapath_info\{kind="native"\} 1$/m);
  assert.match(text, /^sluice_datapath_info\{kind="js",proto="tcp"\} 1$/m);
});
