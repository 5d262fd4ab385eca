import { canonicalIp } from '../core/address.js';

/** Why a request was refused before authentication (403). */
export type GuardRefusal = 'bad-host' | 'bad-origin' | 'cross-site';

const LOCAL_NAMES = new Set(['localhost', 'localhost.', '127.0.0.1', '::1']);

/**
 * DNS-rebinding and cross-site checks for the admin listener, made before the token is looked at.
 *
 * - `Host` must name this listener: the listen address itself, a localhost name, or, when the
 *   listener is bound to a wildcard address (0.0.0.0, ::), any IP literal. A rebinding attack
 *   reaches the listener under the attacker's domain name, which none of these match. The port
 *   must be the bound port.
 * - `Origin`, when sent, must be this very origin (`http://` or, over TLS, `https://` + the Host header). Browsers send it
 *   on every cross-origin fetch, EventSource and form POST.
 * - `Sec-Fetch-Site`, when sent, must be `same-origin` or `none` (typed URL, bookmark): this
 *   also refuses same-site requests from another port on localhost, which SameSite=Strict alone
 *   lets through.
 */
export function checkRequest(
  headers: { host?: string | undefined; origin?: string | undefined; 'sec-fetch-site'?: string | string[] | undefined },
  listen: { host: string; port: number; scheme?: 'http' | 'https' },
): GuardRefusal | undefined {
  const host = headers.host?.toLowerCase();
  if (!host || !hostAllowed(host, listen)) return 'bad-host';
  const origin = headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== `${listen.scheme ?? 'http'}://${host}`) return 'bad-origin';
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return 'cross-site';
  return undefined;
}

/** `host` is a lowercased Host header: `name:port`, `[v6]:port`, or without a port (80, or 443 over TLS). */
export function hostAllowed(host: string, listen: { host: string; port: number; scheme?: 'http' | 'https' }): boolean {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(host);
  if (!m) return false;
  const name = m[1] ?? m[2]!;
  const port = m[3] === undefined ? (listen.scheme === 'https' ? 443 : 80) : Number(m[3]);
  if (port !== listen.port) return false;
  if (LOCAL_NAMES.has(name)) return true;
  const ip = canonicalIp(name);
  if (!ip) return false;
  if (ip.address === listen.host) return true;
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
  return wildcard;
}
