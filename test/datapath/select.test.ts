import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { selectUdpDatapath } from '../../src/datapath/native/select.js';
import { jsDatapath } from '../../src/datapath/js-datapath.js';
import { isSluiceError } from '../../src/core/errors.js';
import { parseConfig } from '../../src/config/load.js';

const unavailable = () => ({ ok: false as const, reason: 'not built here' });

test('datapath selection: js is js; auto falls back on js with the reason; native refuses to start without the addon', () => {
  assert.equal(selectUdpDatapath('js').datapath, jsDatapath);
  const auto = selectUdpDatapath('auto', { load: unavailable });
  assert.equal(auto.datapath.kind, 'js');
  assert.equal(auto.fallback, 'not built here');
  assert.throws(
    () => selectUdpDatapath('native', { load: unavailable }),
    (err) => isSluiceError(err, 'SLUICE_ERR_CONFIG_INVALID') && /not built here/.test(err.message),
  );
});

test('datapath selection: auto and native use the addon where it loads', (t) => {
  const loaded = loadNativeBinding();
  if (!loaded.ok) return t.skip(`addon unavailable: ${loaded.reason}`);
  for (const choice of ['auto', 'native'] as const) {
    const s = selectUdpDatapath(choice);
    assert.equal(s.datapath.kind, 'native');
    assert.equal(s.fallback, undefined);
  }
});

test('addon loading never throws: other platforms, a missing build and a broken file are reasons', () => {
  const other = loadNativeBinding(undefined, 'darwin');
  assert.equal(other.ok, false);
  assert.match(!other.ok ? other.reason : '', /needs Linux, this is darwin/);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-addon-'));
  const missing = loadNativeBinding(join(dir, 'absent.node'), 'linux');
  assert.match(!missing.ok ? missing.reason : '', /is not built/);
  const broken = join(dir, 'broken.node');
  writeFileSync(broken, 'not an ELF file');
  const bad = loadNativeBinding(broken, 'linux');
  assert.match(!bad.ok ? bad.reason : '', /does not load/);
});

test('config: datapath is auto | native | js, auto by default; anything else is refused with its path', () => {
  const base = 'routes: {}\n';
  const d = parseConfig(base);
  assert.ok(d.ok);
  assert.equal(d.ok && d.config.datapath, 'auto');
  for (const v of ['native', 'js']) {
    const r = parseConfig(`${base}datapath: ${v}\n`);
    assert.ok(r.ok);
    assert.equal(r.ok && r.config.datapath, v);
  }
  const bad = parseConfig(`${base}datapath: fast\n`);
  assert.equal(bad.ok, false);
  assert.equal(!bad.ok && bad.issues[0]!.path, 'datapath');
});

// CI runs on Linux with g++, make and python3: a native build that broke must fail CI here rather
// than pass quietly with every [native] test skipped.
test('CI: npm ci built the native datapath and it loads', { skip: process.env.CI !== 'true' || process.platform !== 'linux' }, () => {
  const loaded = loadNativeBinding();
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.reason);
});
