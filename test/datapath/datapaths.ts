import { test as nodeTest, type TestContext } from 'node:test';
import type { UdpDatapath } from '../../src/datapath/udp-datapath.js';
import { jsDatapath } from '../../src/datapath/js-datapath.js';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { startNode as startNodeOn } from '../helpers/node.js';
import { nativeStreamCase } from './stream-datapaths.js';

export interface DatapathCase {
  readonly kind: 'js' | 'native';
  readonly datapath: UdpDatapath | undefined;
  /** Why this kind cannot run here (the addon did not build or load). */
  readonly skip?: string;
}

let native: DatapathCase | undefined;

/** The native datapath once per test process (one engine serves every test of a file). */
export function nativeCase(): DatapathCase {
  if (native) return native;
  const loaded = loadNativeBinding();
  native = loaded.ok
    ? { kind: 'native', datapath: new NativeDatapath(loaded.binding, loaded.layout) }
    : { kind: 'native', datapath: undefined, skip: `native datapath unavailable: ${loaded.reason}` };
  return native;
}

export function datapathCases(): DatapathCase[] {
  return [{ kind: 'js', datapath: jsDatapath }, nativeCase()];
}

/**
 * Runs UDP behaviour tests once per datapath. `test` registers each test as "name [js]" and
 * "name [native]"; inside it, `startNode` and `datapathOf(t)` use that run's datapath, and the
 * node's TCP routes run on the stream datapath of the same kind (so TCP parts of these tests,
 * reverdicts, reloads, ACLs, run on both too). Tests registered with node:test's own `test` get
 * the default (js) from the same `startNode`.
 */
export function perDatapath() {
  const current = new WeakMap<TestContext, UdpDatapath>();
  const test = (name: string, fn: (t: TestContext) => Promise<void> | void) => {
    for (const c of datapathCases()) {
      nodeTest(`${name} [${c.kind}]`, { skip: c.skip ?? false }, (t) => {
        current.set(t, c.datapath!);
        return fn(t);
      });
    }
  };
  const datapathOf = (t: TestContext): UdpDatapath | undefined => current.get(t);
  const streamOf = (t: TestContext) => (current.get(t)?.kind === 'native' ? nativeStreamCase().datapath : undefined);
  const startNode: typeof startNodeOn = (t, yaml, deps = {}) => startNodeOn(t, yaml, { udpDatapath: current.get(t), streamDatapath: streamOf(t), ...deps });
  return { test, startNode, datapathOf };
}
