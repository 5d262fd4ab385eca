import { SluiceError } from '../../core/errors.js';
import { NO_CONGESTION_CHOICE, type CongestionChoice } from '../congestion.js';
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
export function selectStreamDatapath(choice: DatapathChoice, opts: { load?: () => BindingLoad; congestion?: CongestionChoice } = {}): StreamDatapathSelection {
  const congestion = opts.congestion ?? NO_CONGESTION_CHOICE;
  // Node's sockets cannot set TCP_CONGESTION: a named one needs the engine; auto's is a saving only.
  const jsOnly = (why: string) => {
    if (congestion.all !== '') throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `congestion: "${congestion.all}" needs the native TCP stream datapath (${why}); use auto or system`);
    return jsStreamDatapath;
  };
  if (choice === 'js') return { datapath: jsOnly('datapath: js') };
  const loaded = (opts.load ?? loadNativeBinding)();
  const binding = loaded.ok ? streamBindingOf(loaded.binding) : loaded.reason;
  if (typeof binding !== 'string') return { datapath: new NativeStreamDatapath(binding, congestion) };
  if (choice === 'native') throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `datapath: native: the native TCP stream datapath is not available: ${binding}`);
  return { datapath: jsOnly(`not available here: ${binding}`), fallback: binding };
}
