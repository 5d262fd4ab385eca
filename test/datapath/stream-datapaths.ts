import { test as nodeTest, type TestContext } from 'node:test';
import type { StreamDatapath } from '../../src/datapath/stream-datapath.js';
import { jsStreamDatapath } from '../../src/datapath/js-stream-datapath.js';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeStreamDatapath } from '../../src/datapath/native/native-stream-datapath.js';
import { streamBindingOf } from '../../src/datapath/native/stream-binding.js';
import { startNode as startNodeOn } from '../helpers/node.js';

export interface StreamDatapathCase {
  readonly kind: 'js' | 'native';
  readonly datapath: StreamDatapath | undefined;
  /** Why this kind cannot run here (the addon did not build or load); never set under CI=true. */
  readonly skip?: string;
}

let native: StreamDatapathCase | undefined;

/**
 * The native stream datapath once per test process. Outside CI an addon that does not load skips
 * its runs loudly; under CI=true it fails them, so a broken build cannot pass as a skip.
 */
export function nativeStreamCase(): StreamDatapathCase {
  if (native) return native;
  const loaded = loadNativeBinding();
  const binding = loaded.ok ? streamBindingOf(loaded.binding) : loaded.reason;
  if (typeof binding !== 'string') native = { kind: 'native', datapath: new NativeStreamDatapath(binding) };
  else if (process.env.CI === 'true') native = { kind: 'native', datapath: undefined };
  else {
    process.stderr.write(`SKIPPING native stream datapath runs: ${binding}\n`);
    native = { kind: 'native', datapath: undefined, skip: `native stream datapath unavailable: ${binding}` };
  }
  return native;
}

export function streamDatapathCases(): StreamDatapathCase[] {
  return [{ kind: 'js', datapath: jsStreamDatapath }, nativeStreamCase()];
}

/**
 * Runs TCP behaviour tests once per stream datapath: "name [js]" and "name [native]"; inside,
 * `startNode` and `datapathOf(t)` use that run's datapath. Under CI=true a native datapath that
 * did not load fails its runs instead of skipping them.
 */
export function perStreamDatapath() {
  const current = new WeakMap<TestContext, StreamDatapath>();
  /** `only`: a behaviour one datapath has and the other does not (registered for that one alone, never skipped). */
  const test = (name: string, fn: (t: TestContext) => Promise<void> | void, only?: 'js' | 'native') => {
    for (const c of streamDatapathCases()) {
      if (only && c.kind !== only) continue;
      nodeTest(`${name} [${c.kind}]`, { skip: c.skip ?? false }, (t) => {
        if (!c.datapath) throw new Error('CI=true: the native stream datapath must load (node native/build.mjs; see native/build.log)');
        current.set(t, c.datapath);
        return fn(t);
      });
    }
  };
  const datapathOf = (t: TestContext): StreamDatapath | undefined => current.get(t);
  const startNode: typeof startNodeOn = (t, yaml, deps = {}) => startNodeOn(t, yaml, { streamDatapath: current.get(t), ...deps });
  return { test, startNode, datapathOf };
}

/**
 * Runs tests of a whole app (its config parsed and started as `sluice run` does) once per
 * datapath: "name [js]" and "name [native]"; `fn` gets the config line that picks it
 * (`datapath: js|native`, for UDP and TCP alike) to add to its YAML. The native runs skip (loudly)
 * or fail under CI=true as perStreamDatapath's do.
 */
export function perConfigDatapath() {
  return (name: string, fn: (t: TestContext, datapathLine: string) => Promise<void> | void) => {
    for (const c of streamDatapathCases()) {
      nodeTest(`${name} [${c.kind}]`, { skip: c.skip ?? false }, (t) => {
        if (!c.datapath) throw new Error('CI=true: the native stream datapath must load (node native/build.mjs; see native/build.log)');
        return fn(t, `datapath: ${c.kind}\n`);
      });
    }
  };
}

/**
 * For tests of the native stream datapath alone: `skip` (loud, from nativeStreamCase; never under
 * CI=true) and the datapath, which throws under CI=true when the addon did not load.
 */
export function nativeOnly(): { skip: string | false; datapath: () => StreamDatapath } {
  const c = nativeStreamCase();
  return {
    skip: c.skip ?? false,
    datapath: () => {
      if (!c.datapath) throw new Error('CI=true: the native stream datapath must load (node native/build.mjs)');
      return c.datapath;
    },
  };
}
