// Every vector of ../shared/vectors/proxy-protocol (README there): accept ones decode to their
// `parsed` values field by field, reject ones throw the typed error, reject-tlv ones are refused
// with TLV validation on (and accepted with it off), implementation-defined ones follow the choice
// written in docs/proxy-protocol.md.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp } from '../../../src/core/address.js';
import {
  decodeProxyHeader,
  type ProxyDecodeOptions,
  type ProxyHeader,
  type ProxyHeaderV2,
} from '../../../src/protocol/proxy-protocol/index.js';
import { assertRejects, hex, loadVectors, type Vector, type VectorParsed } from './helpers.js';

const v1 = loadVectors('v1');
const v2 = loadVectors('v2');

test('vector files have the documented counts', () => {
  assert.equal(v1.length, 33);
  assert.equal(v2.length, 47);
});

function decodeOk(buf: Buffer, options?: ProxyDecodeOptions): { header: ProxyHeader; length: number } {
  const r = decodeProxyHeader(buf, options);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') throw new Error('unreachable');
  return r;
}

/** The project's canonical text of an expected address (mapped IPv6 becomes IPv4, documented). */
function canon(address: string): { address: string; family: 4 | 6 } {
  const c = canonicalIp(address);
  assert.ok(c, `vector address ${address}`);
  return c;
}

function checkAddresses(header: ProxyHeader, p: VectorParsed): void {
  if (p.src === undefined) {
    assert.equal(header.addresses, undefined, 'no addresses: the receiver uses the real endpoints');
    return;
  }
  const a = header.addresses;
  assert.ok(a, 'addresses');
  const src = canon(p.src);
  const dst = canon(p.dst!);
  assert.deepEqual(a.source, { address: src.address, port: p.srcPort, family: src.family });
  assert.deepEqual(a.destination, { address: dst.address, port: p.dstPort, family: dst.family });
}

function checkParsed(v: Vector, buf: Buffer, header: ProxyHeader, length: number): void {
  const p = v.parsed!;
  assert.equal(length, p.headerLength, 'headerLength');
  if (header.version === 1) {
    assert.equal(header.protocol, p.command === 'UNKNOWN' ? 'UNKNOWN' : p.family);
    checkAddresses(header, p);
  } else {
    assert.equal(header.command, p.command);
    assert.equal(header.family, p.family);
    assert.equal(header.transport, p.transport);
    if (header.family === 'AF_UNIX') {
      assert.deepEqual(header.unix, { source: p.src, destination: p.dst });
      assert.equal(header.addresses, undefined);
    } else {
      assert.equal(header.unix, undefined);
      checkAddresses(header, p);
    }
    if (p.tlvs !== undefined) checkTlvs(header, p.tlvs);
    else if (v.id === 'v2-tcp4-padded') {
      // 72 zero bytes after the address block: 24 zero-length TLVs of type 0x00, kept as they are.
      assert.equal(header.tlvs.length, 24);
      assert.ok(header.tlvs.every((t) => t.type === 0 && t.value.length === 0));
    } else assert.deepEqual(header.tlvs, []);
  }
  // The payload after the header is left untouched.
  const payload = buf.subarray(length);
  if (p.payloadAscii !== undefined) assert.equal(payload.toString('latin1'), p.payloadAscii);
  if (p.payloadHex !== undefined) assert.equal(payload.toString('hex'), p.payloadHex);
  if (p.payloadAscii === undefined && p.payloadHex === undefined) assert.equal(payload.length, 0);
}

function checkTlvs(header: ProxyHeaderV2, expected: NonNullable<VectorParsed['tlvs']>): void {
  assert.equal(header.tlvs.length, expected.length, 'TLV count');
  expected.forEach((e, i) => {
    const t = header.tlvs[i]!;
    assert.equal(t.type, e.type, `TLV ${i} type`);
    assert.equal(t.value.toString('hex'), e.hex, `TLV ${i} value`);
    if (e.ssl !== undefined) {
      assert.ok(t.ssl, 'SSL TLV parsed');
      assert.equal(t.ssl.client, e.ssl.client);
      assert.equal(t.ssl.verify, e.ssl.verify);
      assert.deepEqual(
        t.ssl.subTlvs.map((s) => ({ type: s.type, ascii: s.value.toString('latin1') })),
        e.ssl.sub,
      );
    }
  });
}

for (const [name, vectors] of [['v1', v1], ['v2', v2]] as const) {
  describe(`${name} vectors`, () => {
    for (const v of vectors) {
      const buf = hex(v.hex);
      if (v.expect === 'accept') {
        test(`accept ${v.id}`, () => {
          for (const options of [{}, { final: true }, { validateTlvs: false }, { version: Number(name[1]) as 1 | 2 }]) {
            const r = decodeOk(buf, options);
            checkParsed(v, buf, r.header, r.length);
          }
        });
        test(`accept ${v.id}: 1-byte segments give need-more until the header is complete`, () => {
          const length = v.parsed!.headerLength;
          for (let k = 0; k < length; k++) {
            assert.deepEqual(decodeProxyHeader(buf.subarray(0, k)), { kind: 'need-more' }, `prefix of ${k} bytes`);
            assertRejects(() => decodeProxyHeader(buf.subarray(0, k), { final: true }), 'truncated');
          }
          const r = decodeOk(buf.subarray(0, length), { final: true });
          checkParsed({ ...v, parsed: { ...v.parsed!, payloadAscii: undefined, payloadHex: undefined } }, buf.subarray(0, length), r.header, r.length);
        });
        test(`accept ${v.id}: the other version alone is refused at byte 0`, () => {
          const other = name === 'v1' ? 2 : 1;
          const err = assertRejects(() => decodeProxyHeader(buf, { version: other }), 'version-not-allowed');
          assert.equal(err.offset, 0);
        });
      } else if (v.expect === 'reject') {
        test(`reject ${v.id}`, () => {
          // `hex` is everything the receiver sees, so the input is final.
          for (const validateTlvs of [true, false]) {
            assertRejects(() => decodeProxyHeader(buf, { final: true, validateTlvs }));
            // While the stream is open it is refused already or still incomplete, never accepted.
            try {
              assert.deepEqual(decodeProxyHeader(buf, { validateTlvs }), { kind: 'need-more' });
            } catch (err) {
              assertRejects(() => { throw err; });
            }
          }
        });
      } else if (v.expect === 'reject-tlv') {
        test(`reject-tlv ${v.id}`, () => {
          assertRejects(() => decodeProxyHeader(buf), 'tlv-malformed');
          assertRejects(() => decodeProxyHeader(buf, { final: true }), 'tlv-malformed');
          // With validation off the frame is accepted: its extent comes from len, not from the TLVs.
          const r = decodeOk(buf, { validateTlvs: false });
          assert.equal(r.length, 16 + buf.readUInt16BE(14));
        });
      }
    }
  });
}

describe('implementation-defined vectors (docs/proxy-protocol.md)', () => {
  const byId = new Map(v2.map((v) => [v.id, v]));
  test('all implementation-defined vectors are covered here', () => {
    const ids = [...v1, ...v2].filter((v) => v.expect === 'implementation-defined').map((v) => v.id);
    assert.deepEqual(ids.sort(), ['v2-length-over-limit', 'v2-proxy-unspec']);
  });

  test('v2-proxy-unspec: PROXY with AF_UNSPEC is accepted; the receiver uses the real endpoints', () => {
    const buf = hex(byId.get('v2-proxy-unspec')!.hex);
    const r = decodeOk(buf, { final: true });
    assert.deepEqual(r.header, {
      version: 2, command: 'PROXY', family: 'AF_UNSPEC', transport: 'UNSPEC', addresses: undefined, unix: undefined, tlvs: [],
    });
    assert.equal(r.length, 16);
  });

  test('v2-length-over-limit: refused from the 16 fixed bytes with the 4096-byte default cap', () => {
    const buf = hex(byId.get('v2-length-over-limit')!.hex);
    const err = assertRejects(() => decodeProxyHeader(buf), 'too-large');
    assert.equal(err.offset, 14);
    // A raised cap waits for the body instead, and a stream that ends there is truncated.
    assert.deepEqual(decodeProxyHeader(buf, { maxV2HeaderBytes: 65_551 }), { kind: 'need-more' });
    assertRejects(() => decodeProxyHeader(buf, { maxV2HeaderBytes: 65_551, final: true }), 'truncated');
  });
});
