// Cost of publishing a UDP port-range exposure (gateway and agent in this process, native datapath):
//   node --expose-gc dist/bench/micro/expose-range.bench.js [ports]   (default: 1000)
// Prints key=value: time from the agent's start to PUBLISH_OK, and the gateway's fds and RSS per
// idle public port. Uses 127.0.0.1 only; the range is found by trying random bases.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { EventStream } from '../../src/observe/events.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { Agent } from '../../src/agent/agent.js';
import { loadNativeBinding } from '../../src/datapath/native/binding.js';
import { NativeDatapath } from '../../src/datapath/native/native-datapath.js';
import { DirectDatagramDialer } from '../../src/upstream/direct/udp-dialer.js';

const TOKEN = 'bench-token-0123456789abcdef';
const fds = () => readdirSync('/proc/self/fd').length;
const rssMb = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
};
const config = (yaml: string) => {
  const r = parseConfig(yaml);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
};

const ports = Number(process.argv[2] ?? 1000);
const loaded = loadNativeBinding();
if (!loaded.ok) throw new Error(`native datapath unavailable: ${loaded.reason}`);
const dp = new NativeDatapath(loaded.binding, loaded.layout, {});
const state = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
const gwConfig = config(`gateway:\n  listen: 127.0.0.1:0\n  stateDir: ${state}\n  ports: 10000-31000\n  agents:\n    home: { token: "${TOKEN}" }\n`).gateway!;
let flow = 0;
const gateway = await Gateway.start(gwConfig, { clock: systemClock, events: new EventStream(), routeDeps: () => ({ admit: undefined, nextFlowId: () => ++flow, datapath: dp, streamDatapath: undefined }), datapath: dp });
const [fds0, rss0] = [fds(), rssMb()];
for (let tries = 0; tries < 20; tries++) {
  const base = 10_000 + Math.floor(Math.random() * (31_000 - 10_000 - ports));
  const agentConfig = config(`agent:\n  name: home\n  gateway: 127.0.0.1:${gateway.tcpAddress.port}\n  token: "${TOKEN}"\n  fingerprint: ${gateway.fingerprint}\n  expose:\n    media: { local: "127.0.0.1:5000", remote: "udp://127.0.0.1:${base}-${base + ports - 1}" }\n`).agent!;
  const t0 = performance.now();
  const agent = await Agent.start(agentConfig, { clock: systemClock, events: new EventStream(), nextFlowId: () => ++flow, datapath: dp, datagramDialer: new DirectDatagramDialer(undefined, dp) });
  const svc = agent.services()[0]!;
  while (svc.bound === undefined && svc.refusal === undefined) await new Promise((r) => setTimeout(r, 2));
  const ms = performance.now() - t0;
  if (svc.refusal?.code === 'port-in-use') {
    await agent.close();
    continue;
  }
  if (svc.refusal) throw new Error(`${svc.refusal.code}: ${svc.refusal.message}`);
  const [fds1, rss1] = [fds(), rssMb()];
  console.log(`ports=${ports} publish_ms=${ms.toFixed(0)} fds_per_port=${((fds1 - fds0) / ports).toFixed(2)} rss_kb_per_port=${(((rss1 - rss0) * 1024) / ports).toFixed(1)}`);
  await agent.close();
  break;
}
await gateway.close();
dp.destroy();
rmSync(state, { recursive: true, force: true });
