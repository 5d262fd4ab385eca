import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ClientHelloReader, MAX_CLIENT_HELLO_BYTES, type ClientHelloStep } from '../../../src/protocol/tls/client-hello.js';
import { alpnExtension, clientHelloMessage, extension, inRecords, recordedHellos, serverNameExtension } from './hello-builder.js';

const hellos = recordedHellos();

function readAll(bytes: Buffer, cuts: readonly number[] = []): ClientHelloStep {
  const r = new ClientHelloReader();
  let last: ClientHelloStep = { kind: 'need-more' };
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    last = r.push(bytes.subarray(at, cut));
    at = cut;
  }
  last = r.push(bytes.subarray(at));
  return last;
}

function done(step: ClientHelloStep) {
  assert.equal(step.kind, 'done', JSON.stringify(step));
  return step as Extract<ClientHelloStep, { kind: 'done' }>;
}

function failed(step: ClientHelloStep): string {
  assert.equal(step.kind, 'error', JSON.stringify(step));
  return (step as Extract<ClientHelloStep, { kind: 'error' }>).reason;
}

test('golden: real ClientHellos recorded from openssl s_client, curl and Chromium', () => {
  const expected: Record<string, { name: string | undefined; alpn: string[]; ech: boolean }> = {
    'openssl-tls13-sni': { name: 'a.example.org', alpn: [], ech: false },
    'openssl-tls12-alpn': { name: 'b.example.org', alpn: ['h2', 'http/1.1'], ech: false },
    'openssl-no-sni': { name: undefined, alpn: [], ech: false },
    'curl-resolve': { name: 'web.example.org', alpn: ['h2', 'http/1.1'], ech: false },
    // GREASE cipher suites, extensions and groups; an ECH GREASE extension; a post-quantum key share.
    chromium: { name: 'chrome.example.org', alpn: ['h2', 'http/1.1'], ech: true },
  };
  assert.deepEqual([...hellos.keys()].sort(), Object.keys(expected).sort());
  for (const [file, want] of Object.entries(expected)) {
    const bytes = hellos.get(file)!;
    const d = done(readAll(bytes));
    assert.deepEqual({ name: d.hello.serverName, alpn: [...d.hello.alpn], ech: d.hello.ech }, want, file);
    assert.equal(d.bytesConsumed, bytes.length, file);
  }
  assert.ok(hellos.get('chromium')!.length > 1500, 'the Chromium ClientHello carries a post-quantum key share');
});

test('a record header is judged from its first byte: plain HTTP and SSLv2 are refused at once', () => {
  assert.equal(failed(new ClientHelloReader().push(Buffer.from('G'))), 'not-tls');
  assert.equal(failed(new ClientHelloReader().push(Buffer.from([0x80, 0x2e, 0x01]))), 'not-tls');
  assert.equal(failed(new ClientHelloReader().push(Buffer.from([22, 2]))), 'not-tls');
  assert.equal(failed(new ClientHelloReader().push(Buffer.from([22, 3, 1, 0, 0]))), 'bad-record');
  assert.equal(failed(new ClientHelloReader().push(Buffer.from([22, 3, 1, 0x40, 1]))), 'bad-record');
  assert.equal(new ClientHelloReader().push(Buffer.from([22, 3, 1])).kind, 'need-more');
});

test('a ServerHello, a ClientHello too large, lengths that do not add up and a duplicate extension are refused', () => {
  const hello = clientHelloMessage({ serverName: 'a.example.org' });
  const serverHello = Buffer.from(hello);
  serverHello[0] = 2;
  assert.equal(failed(readAll(inRecords(serverHello))), 'not-client-hello');
  const huge = clientHelloMessage({ serverName: 'a.example.org', extensions: [[0x0015, Buffer.alloc(MAX_CLIENT_HELLO_BYTES)]] });
  // Refused from the handshake header, before the body arrives.
  assert.equal(failed(new ClientHelloReader().push(inRecords(huge).subarray(0, 9))), 'too-large');
  const broken = Buffer.from(hello);
  broken[4 + 2 + 32] = 200; // session id length past the end
  assert.equal(failed(readAll(inRecords(broken))), 'malformed');
  const dup = clientHelloMessage({ serverName: 'a.example.org', extensions: [[0, serverNameExtension('b.example.org').subarray(4)]] });
  assert.equal(failed(readAll(inRecords(dup))), 'duplicate-extension');
  assert.equal(failed(readAll(inRecords(clientHelloMessage({ serverName: 'a b.example' })))), 'bad-server-name');
  assert.equal(failed(readAll(inRecords(clientHelloMessage({ serverName: 'caf\xe9.example' })))), 'bad-server-name');
});

test('a ClientHello cut into many tiny records is refused once its wire bytes pass the cap', () => {
  const big = clientHelloMessage({ serverName: 'a.example.org', extensions: [[0x0015, Buffer.alloc(MAX_CLIENT_HELLO_BYTES - 200)]] });
  // 1-byte fragments cost 6 wire bytes per byte: over 32 KiB long before the message ends.
  assert.equal(failed(readAll(inRecords(big, [1]))), 'too-large');
  // The same message in records of 1000 bytes fits.
  assert.equal(done(readAll(inRecords(big, [1000]))).hello.serverName, 'a.example.org');
});

test('a post-quantum sized ClientHello (8 KiB of key shares) over two records parses', () => {
  const big = clientHelloMessage({ serverName: 'pq.example.org', alpn: ['h2'], extensions: [[0x0033, Buffer.alloc(8 * 1024, 1)]] });
  const d = done(readAll(inRecords(big, [5000])));
  assert.equal(d.hello.serverName, 'pq.example.org');
  assert.deepEqual(d.hello.alpn, ['h2']);
});

test('one canonical name: lowercase, no trailing dot; GREASE extensions and ALPN values pass through; no extensions at all', () => {
  const grease = clientHelloMessage({ serverName: 'WWW.Example.ORG.', alpn: ['\x1a\x1a', 'h2'], extensions: [[0x0a0a, Buffer.alloc(0)], [0xfafa, Buffer.from([0])]] });
  const d = done(readAll(inRecords(grease)));
  assert.equal(d.hello.serverName, 'www.example.org');
  assert.deepEqual(d.hello.alpn, ['\x1a\x1a', 'h2']);
  const bare = done(readAll(inRecords(clientHelloMessage({ noExtensions: true }))));
  assert.equal(bare.hello.serverName, undefined);
});

test('bytes after the ClientHello are not consumed; results are final; an early end is truncated', () => {
  const wire = hellos.get('openssl-tls13-sni')!;
  const r = new ClientHelloReader();
  const d = done(r.push(Buffer.concat([wire, Buffer.from([23, 3, 3, 0, 1, 0])])));
  assert.equal(d.bytesConsumed, wire.length);
  assert.equal(r.push(Buffer.from('more')), d);
  const t = new ClientHelloReader();
  assert.equal(t.push(wire.subarray(0, 100)).kind, 'need-more');
  assert.equal(failed(t.end()), 'truncated');
});

test('property: any split of a recorded ClientHello into segments parses the same', () => {
  for (const [name, wire] of hellos) {
    const want = done(readAll(wire));
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 40 }), (cuts) => {
        assert.deepEqual(readAll(wire, cuts), want, name);
      }),
      { numRuns: 200 },
    );
  }
});

test('property: a ClientHello in any number of handshake records, split anywhere, parses the same', () => {
  fc.assert(
    fc.property(
      fc.option(fc.stringMatching(/^[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,3}$/), { nil: undefined }),
      fc.array(fc.stringMatching(/^[!-~]{1,12}$/), { maxLength: 4 }),
      fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 3000 }), { maxLength: 20 }),
      (serverName, alpn, fragments, cuts) => {
        const msg = clientHelloMessage({ ...(serverName !== undefined ? { serverName } : {}), alpn: alpn.length ? alpn : undefined, extensions: [[0x1a1a, Buffer.alloc(600, 2)]] } as never);
        const wire = inRecords(msg, fragments);
        const d = done(readAll(wire, [...new Set(cuts.filter((c) => c < wire.length))]));
        assert.equal(d.hello.serverName, serverName);
        assert.deepEqual(d.hello.alpn, alpn);
        assert.equal(d.bytesConsumed, wire.length);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: random bytes, and recorded ClientHellos with bytes changed, never throw and always end in a step', () => {
  const check = (bytes: Buffer, cuts: number[]) => {
    const r = new ClientHelloReader();
    let at = 0;
    for (const cut of [...new Set(cuts.filter((c) => c < bytes.length))].sort((a, b) => a - b)) {
      assert.ok(['need-more', 'done', 'error'].includes(r.push(bytes.subarray(at, cut)).kind));
      at = cut;
    }
    const last = r.push(bytes.subarray(at));
    if (last.kind === 'need-more') assert.equal(r.end().kind, 'error');
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(3000), { maxLength: 10 }), (b, cuts) => check(Buffer.from(b), cuts)), { numRuns: 1000 });
  // Random bodies behind a valid record and handshake header reach the extension parser.
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 2000 }), (body) => {
      const msg = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
      check(inRecords(msg), []);
    }),
    { numRuns: 1000 },
  );
  const wires = [...hellos.values()];
  fc.assert(
    fc.property(fc.nat(wires.length - 1), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 6 }), (i, edits) => {
      const wire = Buffer.from(wires[i]!);
      for (const [at, v] of edits) wire[at % wire.length] = v;
      check(wire, [wire.length >> 1]);
    }),
    { numRuns: 1000 },
  );
});

test('ALPN and SNI extensions built here match what the recorded clients send', () => {
  // Guards the builder the property tests rely on: same bytes as openssl's own extension.
  const wire = hellos.get('openssl-tls12-alpn')!;
  assert.ok(wire.includes(alpnExtension(['h2', 'http/1.1'])));
  assert.ok(wire.includes(serverNameExtension('B.Example.Org')));
  assert.ok(extension(0x10, Buffer.alloc(0)).equals(Buffer.from([0, 0x10, 0, 0])));
});
