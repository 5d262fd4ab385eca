import {
  ErrorCode, Nonce, PasswordAlgorithm, PasswordAlgorithmAttr, PasswordAlgorithms, Realm, Username, attr, getAttribute,
  keyAlgorithmOf, longTermKey, verifyIntegrity, NONCE_COOKIE, StunErrorCode,
  type AttributeEntry, type DecodedStunMessage, type EncodeOptions, type KeyAlgorithm, type PasswordAlgorithmValue,
} from '../protocol/stun/index.js';

/**
 * Long-term credentials for one TURN server (RFC 8489 §9.2): learns REALM and NONCE from 401
 * and 438 responses, signs requests and checks the integrity of responses. No I/O; the client
 * decides when to retry from what `learn` returns.
 */
export class LongTermAuth {
  #realm: string | undefined;
  #nonce: string | undefined;
  #key: Buffer | undefined;
  #algorithm: KeyAlgorithm = 'md5';
  /** Set when the server offered RFC 8489's algorithm negotiation (nonce cookie + PASSWORD-ALGORITHMS). */
  #offered: readonly PasswordAlgorithmValue[] | undefined;

  constructor(
    readonly username: string,
    readonly password: string,
  ) {}

  get realm(): string | undefined {
    return this.#realm;
  }

  /** True once a realm and nonce are known, i.e. requests are signed. */
  get ready(): boolean {
    return this.#key !== undefined;
  }

  /** USERNAME, REALM, NONCE (and the negotiated algorithm) for a signed request; empty before the first 401. */
  attributes(): AttributeEntry[] {
    if (!this.#key) return [];
    const list: AttributeEntry[] = [attr(Username, this.username), attr(Realm, this.#realm!), attr(Nonce, this.#nonce!)];
    if (this.#offered) {
      list.push(attr(PasswordAlgorithms, this.#offered));
      const algorithm = this.#algorithm === 'sha256' ? PasswordAlgorithm.Sha256 : PasswordAlgorithm.Md5;
      list.push(attr(PasswordAlgorithmAttr, { algorithm, parameters: Buffer.alloc(0) }));
    }
    return list;
  }

  encodeOptions(): EncodeOptions {
    if (!this.#key) return { fingerprint: true };
    return { integrityKey: this.#key, integrity: this.#algorithm === 'sha256' ? 'sha256' : 'sha1', fingerprint: true };
  }

  /**
   * Whether a response with our transaction id is genuine (RFC 8489 §9.2.5): once requests are
   * signed, a success must carry valid integrity; an error may lack it (401 and 438 usually do)
   * but must not carry a wrong one. A refused response is treated as never received.
   */
  accepts(res: DecodedStunMessage): boolean {
    if (!this.#key) return true;
    const alg = this.#algorithm === 'sha256' && res.messageIntegritySha256 ? 'sha256' : 'sha1';
    const v = verifyIntegrity(res, this.#key, alg);
    if (v === 'mismatch') return false;
    return v === 'ok' || res.cls === 'error';
  }

  /**
   * Takes REALM/NONCE from a 401 or 438 response. Returns true when a retry with the new values
   * can succeed: a 401 while unsigned, a 401 with a new nonce (the server forgot us), any 438.
   * A 401 on a signed request with the same nonce means wrong credentials: false.
   */
  learn(res: DecodedStunMessage): boolean {
    const code = getAttribute(res, ErrorCode)?.code;
    if (code !== StunErrorCode.Unauthorized && code !== StunErrorCode.StaleNonce) return false;
    const nonce = getAttribute(res, Nonce);
    const realm = getAttribute(res, Realm) ?? this.#realm;
    if (nonce === undefined || realm === undefined) return false;
    const wasSigned = this.#key !== undefined;
    const sameNonce = nonce === this.#nonce;
    if (code === StunErrorCode.Unauthorized && wasSigned && sameNonce) return false;
    this.#nonce = nonce;
    if (realm !== this.#realm || !this.#key) this.#negotiate(res, realm);
    return true;
  }

  #negotiate(res: DecodedStunMessage, realm: string): void {
    this.#realm = realm;
    const offered = this.#nonce!.startsWith(NONCE_COOKIE) ? getAttribute(res, PasswordAlgorithms) : undefined;
    this.#offered = offered;
    // RFC 8489 §9.2.4: pick the first algorithm of the server's list that we know; MD5 otherwise.
    this.#algorithm = offered?.map((a) => keyAlgorithmOf(a.algorithm)).find((a) => a !== undefined) ?? 'md5';
    this.#key = longTermKey(this.username, realm, this.password, this.#algorithm);
  }
}
