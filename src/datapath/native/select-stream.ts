import { SluiceError } from '../../core/errors.js';
import { jsStreamDatapath } from '../js-stream-datapath.js';
import type { StreamDatapath } from '../stream-datapath.js';
import { loadNativeBinding, type BindingLoad } from './binding.js';
import { NativeStreamDatapath } from './native-stream-datapath.js';
import type { DatapathChoice } from './select.js';
import { streamBindingOf } from './stream-binding.js';

export interface StreamDatapathSelection {
  readonly datapath: StreamDatapath;
  /** Why `auto` fell back on js; the caller logs it once. */
  readonly fallback?: string;
}

/**
 * Builds the stream datapath the `datapath` setting asks for, as selectUdpDatapath does for UDP:
 * `native` where the addon (with its stream engine) cannot load is a startup error, `auto`
 * downgrades and says why.
 */
export function selectStreamDatapath(choice: DatapathChoice, opts: { load?: () => BindingLoad } = {}): StreamDatapathSelection {
  if (choice === 'js') return { datapath: jsStreamDatapath };
  const loaded = (opts.load ?? loadNativeBinding)();
  const binding = loaded.ok ? streamBindingOf(loaded.binding) : loaded.reason;
  if (typeof binding !== 'string') return { datapath: new NativeStreamDatapath(binding) };
  if (choice === 'native') throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `datapath: native: the native TCP stream datapath is not available: ${binding}`);
  return { datapath: jsStreamDatapath, fallback: binding };
}
