
test('the picked route admits with its own ACL; PROXY headers from untrusted or silent senders are refused before any route', async (t) => {
  const upstream = await tcpServer(t, (s) => s.end('up\n'));
  const n = await startNode(t, `
routes:
  open:   { listen: "tcp://127.0.0.1:0", match: { sni: [open.test] }, upstream: "127.0.0.1:${upstream.port}", proxyProtocol: { accept: [192.0.2.0/24] } }
  closed: { listen: "tcp://127.0.0.1:0", match: { sni: [closed.test] }, upstream: "127.0.0.1:${upstream.port}", proxyProtocol: { accept: [192.0.2.0/24] }, acl: { deny: [127.0.0.0/8] } }
`);
  const port = n.port('open');
  const send = async (bytes: Buffer) => {
    const c = await tcpConnect(t, port);
    c.write(bytes);
    return (await readAll(c)).toString();
  };
  assert.equal(await send(inRecords(clientHelloMessage({ serverName: 'open.test' }))), 'up\n');
  assert.equal(await send(inRecords(clientHelloMessage({ serverName: 'closed.test' }))), '');
  const v1 = encodeProxyV1({ source: { address: '192.0.2.7', port: 1 }, destination: { address: '192.0.2.8', port: 2 } });
  assert.equal(await send(Buffer.concat([v1, inRecords(clientHelloMessage({ serverName: 'open.test' }))])), '');
  assert.deepEqual(
    n.ofType('session-rejected').map((e) => [e.route, e.reason]),
    [
      ['closed', 'acl-cidr'],
      [`tcp://127.0.0.1:${port}`, 'proxy-header-untrusted'],
    ],
  );
});
