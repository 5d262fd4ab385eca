import { z } from 'zod';
import { canonicalIp, type HostPort } from '../core/address.js';
import type { GatewayNames } from './expose-config.js';
import { canonicalMatchName } from './route-match.js';

/**
 * `gateway.names` (where exposures by name are served) and `gateway.agents.<name>.names` (which
 * names an agent may claim), docs/sni.md "Exposures by name".
 */

/* eslint-disable @typescript-eslint/no-explicit-any -- the host:port part is schema.ts's */
export function namesSchemas(hostPort: z.ZodType<HostPort, any>) {
  const name = z.string().transform((text, ctx) => {
    const n = canonicalMatchName(text);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a host name such as app.example.org or a wildcard such as *.example.org; got "${text}"` });
      return z.NEVER;
    }
    return n;
  });
  return {
    ports: z
      .strictObject({ tls: hostPort.optional(), quic: hostPort.optional() })
      .refine((n) => n.tls !== undefined || n.quic !== undefined, 'set tls (TCP, e.g. 0.0.0.0:443), quic (UDP, e.g. 0.0.0.0:443) or both'),
    policy: z.array(name).min(1, 'list at least one name, or leave names out (the agent may then claim none)'),
  };
}

export function compileNames(raw: { tls?: HostPort; quic?: HostPort } | undefined): { names?: GatewayNames } {
  if (raw === undefined) return {};
  return {
    names: {
      ...(raw.tls ? { tls: { transport: 'tcp' as const, host: raw.tls.host, port: raw.tls.port } } : {}),
      ...(raw.quic ? { quic: { transport: 'udp' as const, host: raw.quic.host, port: raw.quic.port } } : {}),
    },
  };
}

/**
 * Whether the policy lets an agent claim `name`: a listed name equal to it, or a listed `*.x` with
 * `name` below x (a claimed `*.a.x` too). `*.x` never covers x itself, as in routing (sni-router.ts).
 */
export function namePolicyAllows(policy: readonly string[] | undefined, name: string): boolean {
  if (policy === undefined) return false;
  return policy.some((p) => p === name || (p.startsWith('*.') && name.length > p.length - 1 && name.endsWith(p.slice(1))));
}

/** The shared ports are IP addresses, and not the agent endpoint's port (TLS on TCP, datagrams on UDP, one number). */
export function checkNamesPorts(names: { tls?: HostPort; quic?: HostPort } | undefined, listen: HostPort, at: (path: (string | number)[], message: string) => void): void {
  for (const key of ['tls', 'quic'] as const) {
    const hp = names?.[key];
    if (hp === undefined) continue;
    if (!canonicalIp(hp.host)) at(['gateway', 'names', key], `host must be an IP address, got "${hp.host}"`);
    else if (hp.port !== 0 && hp.port === listen.port) at(['gateway', 'names', key], `port ${hp.port} is the agent endpoint's own (gateway.listen); pick another`);
  }
}
