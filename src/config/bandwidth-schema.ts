import { z } from 'zod';
import { parseByteRate, parseByteSize } from '../core/byte-rate.js';
import type { BandwidthLimit, BandwidthSettings, RateLimit } from './route-settings.js';
import { expecting } from './issue-text.js';

/**
 * `bandwidth:` (docs/bans.md "Bandwidth limits"): `perSource` and `perRoute`, each a rate for both
 * directions (each direction gets that rate on its own) or `{ up, down }` (up = client to upstream);
 * `burst` in bytes for every bucket, by default 100 ms of the bucket's rate and at least 64 KiB
 * (so the largest UDP datagram can pass).
 */
export const MIN_DEFAULT_BURST = 64 * 1024;

const byteRate = expecting(z.string(), 'a rate such as 10Mbit/s, 500kbit/s or 2MB/s').transform((text, ctx) => {
  const r = parseByteRate(text);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

const byteSize = expecting(z.union([z.string(), z.number()]), 'a size such as 256KiB, 1MB or a number of bytes').transform((v, ctx) => {
  const r = parseByteSize(v);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

const directions = z.union([byteRate, z.strictObject({ up: byteRate.optional(), down: byteRate.optional() })]);

/** `bandwidth:` of a route or of `gateway.services`; `withAgent` adds `perAgent` (gateway.agents.<name>). */
function bandwidthOf(withAgent: boolean) {
  const agentKey = withAgent ? { perAgent: directions.optional() } : {};
  return z
    .strictObject({ perSource: directions.optional(), perRoute: directions.optional(), ...agentKey, burst: byteSize.optional() })
    .transform((b): BandwidthSettings => {
      const limit = (d: number | { up?: number; down?: number } | undefined): BandwidthLimit | undefined => {
        if (d === undefined) return undefined;
        const up = typeof d === 'number' ? d : d.up;
        const down = typeof d === 'number' ? d : d.down;
        return { ...(up !== undefined ? { up: rateOf(up, b.burst) } : {}), ...(down !== undefined ? { down: rateOf(down, b.burst) } : {}) };
      };
      const perSource = limit(b.perSource);
      const perRoute = limit(b.perRoute);
      const perAgent = limit((b as { perAgent?: number | { up?: number; down?: number } }).perAgent);
      return { ...(perSource ? { perSource } : {}), ...(perRoute ? { perRoute } : {}), ...(perAgent ? { perAgent } : {}) };
    });
}

export const bandwidthSchema = bandwidthOf(false);
export const agentBandwidthSchema = bandwidthOf(true);

export type RawBandwidth = z.output<typeof bandwidthSchema>;

function rateOf(bytesPerSecond: number, burst: number | undefined): RateLimit {
  return { perSecond: bytesPerSecond, burst: burst ?? Math.max(MIN_DEFAULT_BURST, Math.round(bytesPerSecond / 10)) };
}
