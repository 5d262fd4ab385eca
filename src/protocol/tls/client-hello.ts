/**
 * Reads the server name (SNI) and ALPN protocols of a TLS ClientHello without terminating TLS
 * (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2, RFC 6066 section 3, RFC 7301). Pure: bytes
 * in, a step out; no timers, no sockets. Fed incrementally, it copes with TLS records split
 * across TCP segments and a ClientHello split across several handshake records.
 *
 * With Encrypted Client Hello (ECH) this is the outer ClientHello: the name is the public name.
 */

/** The ClientHello handshake message (4-byte header + body) may be at most this long. */
export const MAX_CLIENT_HELLO_BYTES = 16_384;
/**
 * Wire bytes (record headers included) read before giving up: room for a maximal ClientHello cut
 * into many small records (each costs a 5-byte header), and no more.
 */
export const MAX_CLIENT_HELLO_WIRE_BYTES = 32_768;

const RECORD_HEADER = 5;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const MAX_RECORD_PLAINTEXT = 16_384;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const EXT_ECH = 0xfe0d;

/** Stable reasons a byte stream is not a ClientHello this reader accepts. */
export type ClientHelloError =
  /** The first record is not a TLS handshake record (plain HTTP, SSLv2, garbage). */
  | 'not-tls'
  /** A record of length 0 or over 2^14 bytes. */
  | 'bad-record'
  /** The first handshake message is not a ClientHello. */
  | 'not-client-hello'
  /** Over MAX_CLIENT_HELLO_BYTES, or over MAX_CLIENT_HELLO_WIRE_BYTES on the wire. */
  | 'too-large'
  /** Lengths inside the ClientHello do not add up. */
  | 'malformed'
  /** The server_name extension holds a name that is empty, too long or not printable ASCII. */
  | 'bad-server-name'
  /** The same extension twice (RFC 8446 section 4.2 forbids it). */
  | 'duplicate-extension'
  /** The stream ended before the ClientHello did. */
  | 'truncated';

export interface ClientHello {
  /** The SNI host name, canonical (lowercase, no trailing dot); undefined when the client sent none. */
  readonly serverName: string | undefined;
  /** ALPN protocol names in the client's order, as sent (GREASE values included). */
  readonly alpn: readonly string[];
  /** The ClientHello carries an encrypted_client_hello extension (its name is the outer, public one). */
  readonly ech: boolean;
}

export type ClientHelloStep =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'done'; readonly hello: ClientHello; /** Wire bytes up to the end of the record that completed it. */ readonly bytesConsumed: number }
  | { readonly kind: 'error'; readonly reason: ClientHelloError };

const NEED_MORE: ClientHelloStep = { kind: 'need-more' };

/**
 * One connection's ClientHello, fed chunk by chunk. After `done` or `error` every further call
 * answers the same. Holds at most one record's bytes beyond the handshake fragments gathered.
 */
export class ClientHelloReader {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #fragments: Buffer[] = [];
  #handshakeBytes = 0;
  #consumed = 0;
  #final: ClientHelloStep | undefined;
  /** Pending bytes needed before parsing again (a whole record): keeps a dribbled record linear. */
  #need = 0;

  push(chunk: Buffer): ClientHelloStep {
    if (this.#final) return this.#final;
    if (chunk.length > 0) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
    }
    return this.#pendingBytes < this.#need ? NEED_MORE : this.#advance();
  }

  /** The stream ended: `truncated` unless a result was reached. */
  end(): ClientHelloStep {
    return (this.#final ??= { kind: 'error', reason: 'truncated' });
  }

  #fail(reason: ClientHelloError): ClientHelloStep {
    this.#pending = [];
    this.#fragments = [];
    return (this.#final = { kind: 'error', reason });
  }

  #advance(): ClientHelloStep {
    for (;;) {
      const head = this.#peek(RECORD_HEADER);
      const early = checkRecordHeader(head);
      if (early) return this.#fail(early);
      if (head.length < RECORD_HEADER) return NEED_MORE;
      const length = head.readUInt16BE(3);
      if (this.#consumed + RECORD_HEADER + length > MAX_CLIENT_HELLO_WIRE_BYTES) return this.#fail('too-large');
      if (this.#pendingBytes < RECORD_HEADER + length) {
        const early = this.#earlyHandshakeCheck();
        if (early === NEED_MORE && (this.#handshakeBytes > 0 || this.#pendingBytes >= RECORD_HEADER + 4)) this.#need = RECORD_HEADER + length;
        return early;
      }
      this.#need = 0;
      const record = this.#take(RECORD_HEADER + length);
      this.#consumed += record.length;
      this.#fragments.push(record.subarray(RECORD_HEADER));
      this.#handshakeBytes += length;
      const step = this.#tryHandshake();
      if (step !== NEED_MORE) return step;
    }
  }

  /** Refuses a wrong handshake type or an oversize length from the first record's first bytes, before the rest arrives. */
  #earlyHandshakeCheck(): ClientHelloStep {
    if (this.#handshakeBytes > 0) return NEED_MORE;
    const head = this.#peek(RECORD_HEADER + 4);
    if (head.length < RECORD_HEADER + 4) return NEED_MORE;
    if (head[RECORD_HEADER] !== HANDSHAKE_CLIENT_HELLO) return this.#fail('not-client-hello');
    return 4 + head.readUIntBE(RECORD_HEADER + 1, 3) > MAX_CLIENT_HELLO_BYTES ? this.#fail('too-large') : NEED_MORE;
  }

  #tryHandshake(): ClientHelloStep {
    if (this.#handshakeBytes < 4) return NEED_MORE;
    const hs = this.#fragments.length === 1 ? this.#fragments[0]! : Buffer.concat(this.#fragments);
    this.#fragments = [hs];
    const parsed = parseClientHelloMessage(hs);
    if (parsed === 'need-more') return NEED_MORE;
    if (typeof parsed === 'string') return this.#fail(parsed);
    this.#pending = [];
    this.#fragments = [];
    return (this.#final = { kind: 'done', hello: parsed, bytesConsumed: this.#consumed });
  }

  /** Up to `n` pending bytes without taking them. */
  #peek(n: number): Buffer {
    const first = this.#pending[0];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length >= n || this.#pending.length === 1) return first.subarray(0, n);
    const joined = Buffer.concat(this.#pending);
    this.#pending = [joined];
    return joined.subarray(0, n);
  }

  /** Takes exactly `n` pending bytes (the caller checked they are there). */
  #take(n: number): Buffer {
    const joined = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    const rest = joined.subarray(n);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
    return joined.subarray(0, n);
  }
}

/** Judges a record header from its first bytes on, so garbage is refused at its first byte. */
function checkRecordHeader(head: Buffer): ClientHelloError | undefined {
  if (head.length >= 1 && head[0] !== CONTENT_HANDSHAKE) return 'not-tls';
  if (head.length >= 2 && head[1] !== 3) return 'not-tls';
  if (head.length >= 3 && head[2]! > 4) return 'not-tls';
  if (head.length < RECORD_HEADER) return undefined;
  const length = head.readUInt16BE(3);
  return length === 0 || length > MAX_RECORD_PLAINTEXT ? 'bad-record' : undefined;
}

/**
 * A bare ClientHello handshake message (4-byte header + body) without TLS records, as QUIC CRYPTO
 * frames carry it (RFC 9001 section 4); `need-more` while `hs` holds only a prefix of it. Bytes
 * after the message are ignored.
 */
export function parseClientHelloMessage(hs: Buffer): ClientHello | ClientHelloError | 'need-more' {
  if (hs.length >= 1 && hs[0] !== HANDSHAKE_CLIENT_HELLO) return 'not-client-hello';
  if (hs.length < 4) return 'need-more';
  const bodyLength = hs.readUIntBE(1, 3);
  if (4 + bodyLength > MAX_CLIENT_HELLO_BYTES) return 'too-large';
  if (hs.length < 4 + bodyLength) return 'need-more';
  return parseClientHelloBody(hs.subarray(4, 4 + bodyLength));
}

/** The ClientHello body (after the 4-byte handshake header), or why it is refused. */
export function parseClientHelloBody(b: Buffer): ClientHello | ClientHelloError {
  let at = 2 + 32; // legacy_version, random
  if (b.length < at + 1) return 'malformed';
  at += 1 + b[at]!; // legacy_session_id
  if (b.length < at + 2) return 'malformed';
  const suites = b.readUInt16BE(at);
  if (suites < 2 || suites % 2 !== 0) return 'malformed';
  at += 2 + suites;
  if (b.length < at + 1) return 'malformed';
  const compressions = b[at]!;
  if (compressions < 1) return 'malformed';
  at += 1 + compressions;
  if (at > b.length) return 'malformed';
  let serverName: string | undefined;
  let alpn: string[] = [];
  let ech = false;
  if (at === b.length) return { serverName, alpn, ech }; // TLS 1.2 allows no extensions at all
  if (b.length < at + 2) return 'malformed';
  const extEnd = at + 2 + b.readUInt16BE(at);
  if (extEnd !== b.length) return 'malformed';
  at += 2;
  const seen = new Set<number>();
  while (at < extEnd) {
    if (extEnd - at < 4) return 'malformed';
    const type = b.readUInt16BE(at);
    const len = b.readUInt16BE(at + 2);
    const data = b.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    if (at > extEnd) return 'malformed';
    if (seen.has(type)) return 'duplicate-extension';
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = readServerName(data);
      if (name === 'malformed' || name === 'bad-server-name') return name;
      serverName = name;
    } else if (type === EXT_ALPN) {
      const list = readAlpn(data);
      if (list === undefined) return 'malformed';
      alpn = list;
    } else if (type === EXT_ECH) {
      ech = true;
    }
  }
  return { serverName, alpn, ech };
}

/** server_name (RFC 6066 section 3): the host_name entry, canonical; other name types are skipped. */
function readServerName(d: Buffer): string | undefined | 'malformed' | 'bad-server-name' {
  if (d.length === 0) return undefined; // a server's empty echo; clients do not send it, harmless
  if (d.length < 2 || d.readUInt16BE(0) !== d.length - 2) return 'malformed';
  let at = 2;
  let name: string | undefined;
  while (at < d.length) {
    if (d.length - at < 3) return 'malformed';
    const type = d[at]!;
    const len = d.readUInt16BE(at + 1);
    if (at + 3 + len > d.length) return 'malformed';
    if (type === 0 && name === undefined) {
      const n = canonicalServerName(d.subarray(at + 3, at + 3 + len));
      if (n === undefined) return 'bad-server-name';
      name = n;
    }
    at += 3 + len;
  }
  return name;
}

/** The one canonical form of a host name for matching: lowercase, no trailing dot. Undefined when not a host name. */
export function canonicalServerName(raw: Buffer | string): string | undefined {
  let s = typeof raw === 'string' ? raw : raw.toString('latin1');
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.length === 0 || s.length > 253) return undefined;
  // Letters, digits, hyphen, underscore and dots: A-labels only (IDNs travel punycoded).
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(s)) return undefined;
  return s.toLowerCase();
}

function readAlpn(d: Buffer): string[] | undefined {
  if (d.length < 2 || d.readUInt16BE(0) !== d.length - 2) return undefined;
  const out: string[] = [];
  let at = 2;
  while (at < d.length) {
    const len = d[at]!;
    if (len === 0 || at + 1 + len > d.length) return undefined;
    out.push(d.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  return out;
}
