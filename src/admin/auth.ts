import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The dashboard's session cookie. HttpOnly and SameSite=Strict (RFC 6265bis §4.1.2.7). */
export const COOKIE_NAME = 'sluice_admin';

/**
 * The admin token check. With no token configured every request passes (the listener is then
 * loopback-only, which the config enforces). With one, a request passes if it carries
 * `Authorization: Bearer <token>` or the dashboard cookie.
 *
 * The cookie holds HMAC-SHA256(token, label), not the token: a leaked cookie does not reveal the
 * token, and changing the token logs every dashboard out. Comparisons hash both sides to equal
 * length first and use timingSafeEqual, so neither the length nor a prefix of the token leaks
 * through response times. The token is never logged or echoed.
 */
export class AdminAuth {
  readonly #tokenDigest: Buffer | undefined;
  readonly #cookie: string | undefined;
  readonly #cookieDigest: Buffer | undefined;

  /** `secure`: the listener speaks HTTPS, so the cookie is marked `Secure` (never sent over plain HTTP). */
  constructor(
    token: string | undefined,
    private readonly secure = false,
  ) {
    if (token === undefined) return;
    this.#tokenDigest = sha256(token);
    this.#cookie = createHmac('sha256', token).update('sluice-admin-dashboard-cookie-v1').digest('base64url');
    this.#cookieDigest = sha256(this.#cookie);
  }

  get required(): boolean {
    return this.#tokenDigest !== undefined;
  }

  /** True when the token is not required, or the request carries it (Bearer) or the cookie. */
  allows(headers: CredentialHeaders): boolean {
    return this.check(headers) === 'ok';
  }

  /**
   * `ok`: no token is required, or the request carries it (Bearer) or the cookie. `none`: it
   * carries neither an Authorization header nor the cookie. `wrong`: it carries a credential that
   * does not match (a guess, or a cookie from before a token change).
   */
  check(headers: CredentialHeaders): 'ok' | 'none' | 'wrong' {
    if (!this.required) return 'ok';
    if (!presentsCredential(headers)) return 'none';
    const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(headers.authorization ?? '')?.[1];
    if (bearer !== undefined && this.matchesToken(bearer)) return 'ok';
    const cookie = readCookie(headers.cookie, COOKIE_NAME);
    return cookie !== undefined && timingSafeEqual(sha256(cookie), this.#cookieDigest!) ? 'ok' : 'wrong';
  }

  /** Constant-time check of a token typed into the login form or sent as Bearer. */
  matchesToken(candidate: string): boolean {
    return this.#tokenDigest !== undefined && timingSafeEqual(sha256(candidate), this.#tokenDigest);
  }

  /** The Set-Cookie value after a successful login; `Secure` when served over TLS. */
  loginCookie(): string {
    return `${COOKIE_NAME}=${this.#cookie ?? ''}; Path=/; HttpOnly; SameSite=Strict${this.secure ? '; Secure' : ''}; Max-Age=43200`;
  }

  logoutCookie(): string {
    return `${COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict${this.secure ? '; Secure' : ''}; Max-Age=0`;
  }
}

export interface CredentialHeaders {
  authorization?: string | undefined;
  cookie?: string | undefined;
}

/** The request carries something to compare: an Authorization header or the dashboard cookie. */
export function presentsCredential(headers: CredentialHeaders): boolean {
  return headers.authorization !== undefined || readCookie(headers.cookie, COOKIE_NAME) !== undefined;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
