import type { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { FORWARD_COUNTERS, nativeKeys } from '../../src/datapath/native/native-keys.js';

/** Datagrams the batch forwarded over every entry ever installed in `dp` (ids are not reused in a test). */
export function forwarded(dp: NativeDatapath): number {
  const c = nativeKeys(dp)?.fwd?.counters;
  if (!c) return 0;
  let n = 0;
  for (let i = 0; i < c.length; i += FORWARD_COUNTERS) n += c[i]!;
  return n;
}
