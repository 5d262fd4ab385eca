import { SluiceError } from '../../core/errors.js';
import { jsDatapath } from '../js-datapath.js';
import type { UdpDatapath } from '../udp-datapath.js';
import { loadNativeBinding, type BindingLoad } from './binding.js';
import { NativeDatapath, type NativeDatapathOptions } from './native-datapath.js';

/** The `datapath` config key: `auto` is native where the addon loads, js elsewhere. */
export type DatapathChoice = 'auto' | 'native' | 'js';

export interface DatapathSelection {
  readonly datapath: UdpDatapath;
  /** Why `auto` fell back on js; the caller logs it once. */
  readonly fallback?: string;
}

/**
 * Builds the UDP datapath the config asks for. `native` where the addon cannot load is a
 * startup error (SLUICE_ERR_CONFIG_INVALID) rather than a silent downgrade; `auto` downgrades
 * and says why.
 */
export function selectUdpDatapath(choice: DatapathChoice, opts: NativeDatapathOptions & { load?: () => BindingLoad } = {}): DatapathSelection {
  if (choice === 'js') return { datapath: jsDatapath };
  const loaded = (opts.load ?? loadNativeBinding)();
  if (loaded.ok) return { datapath: new NativeDatapath(loaded.binding, loaded.layout, opts) };
  if (choice === 'native') throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `datapath: native: the native UDP datapath is not available: ${loaded.reason}`);
  return { datapath: jsDatapath, fallback: loaded.reason };
}
