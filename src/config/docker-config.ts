import { z } from 'zod';
import { canonicalIp } from '../core/address.js';
import { duration } from './unit-schemas.js';

/**
 * `docker:` (docs/containers.md): where the engine is and how its containers' labels become
 * routes. Spread into the top-level schema (config/schema.ts) and compiled by `compileDocker`.
 * Same rules as the rest of the config: strict objects, every default here.
 */
const socket = z.string().superRefine((text, ctx) => {
  if (!/^unix:\/\/\/./.test(text)) ctx.addIssue({ code: 'custom', message: `expected unix:///path/to/engine.sock; got "${text}"` });
});

const ip = z.string().superRefine((text, ctx) => {
  if (!canonicalIp(text)) ctx.addIssue({ code: 'custom', message: `expected an IP address; got "${text}"` });
});

export const dockerSchema = z
  .strictObject({
    /** Docker's API, or Podman's Docker-compatible one, on a unix socket. */
    socket: socket.default('unix:///var/run/docker.sock'),
    /** Read Sluice's own `sluice.routes.<name>.<key>` labels. */
    sluiceLabels: z.boolean().default(true),
    /** Read GoDoxy's stream labels (`proxy.<alias>.port: LISTEN:TARGET`, scheme tcp or udp). */
    godoxy: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Listen address of a GoDoxy route without its own `bind` label (GoDoxy's default is 0.0.0.0). */
        bind: ip.default('0.0.0.0'),
      })
      .prefault({}),
    /** Backoff between attempts to reach a lost engine: doubles from `min` up to `max`. */
    reconnect: z.strictObject({ min: duration.prefault('250ms'), max: duration.prefault('30s') }).prefault({}),
  })
  .superRefine((d, ctx) => {
    if (d.reconnect.max < d.reconnect.min) ctx.addIssue({ code: 'custom', path: ['reconnect', 'max'], message: 'must not be below reconnect.min' });
  });

export type RawDocker = z.output<typeof dockerSchema>;

export interface DockerConfig {
  /** Filesystem path of the engine's unix socket (the `unix://` prefix removed). */
  readonly socketPath: string;
  readonly sluiceLabels: boolean;
  readonly godoxy: { readonly enabled: boolean; readonly bind: string };
  readonly reconnect: { readonly minMs: number; readonly maxMs: number };
}

export function compileDocker(d: RawDocker): DockerConfig {
  return {
    socketPath: d.socket.slice('unix://'.length),
    sluiceLabels: d.sluiceLabels,
    godoxy: { enabled: d.godoxy.enabled, bind: canonicalIp(d.godoxy.bind)!.address },
    reconnect: { minMs: d.reconnect.min, maxMs: d.reconnect.max },
  };
}
