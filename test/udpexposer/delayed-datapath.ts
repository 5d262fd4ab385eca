import { test as nodeTest, type TestContext } from 'node:test';
import type { UdpDatapath } from '../../src/datapath/udp-datapath.js';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { perDatapath, type DatapathCase } from '../datapath/datapaths.js';

/** The receive delay of the extra native run (`--batch-delay-us`). */
export const TEST_BATCH_DELAY_US = 1000;

let delayed: DatapathCase | undefined;

/** A native datapath with a receive delay, once per test process. */
function delayedCase(): DatapathCase {
  if (delayed) return delayed;
  const loaded = loadNativeBinding();
  delayed = loaded.ok
    ? { kind: 'native', datapath: new NativeDatapath(loaded.binding, loaded.layout, { receiveDelayUs: TEST_BATCH_DELAY_US }) }
    : { kind: 'native', datapath: undefined, skip: `native datapath unavailable: ${loaded.reason}` };
  return delayed;
}

/**
 * perDatapath() plus a third run of each test on a native datapath with a receive delay (named
 * "[native, batch delay]"): batching must not change what goes over the wire.
 */
export function perDatapathAndDelay() {
  const per = perDatapath();
  const extra = new WeakMap<TestContext, UdpDatapath>();
  const test = (name: string, fn: (t: TestContext) => Promise<void> | void) => {
    per.test(name, fn);
    const c = delayedCase();
    nodeTest(`${name} [native, batch delay]`, { skip: c.skip ?? false }, (t) => {
      extra.set(t, c.datapath!);
      return fn(t);
    });
  };
  const datapathOf = (t: TestContext): UdpDatapath | undefined => extra.get(t) ?? per.datapathOf(t);
  return { test, datapathOf };
}
