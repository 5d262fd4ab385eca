import pino, { type Logger } from 'pino';
import type { SluiceConfig } from '../config/types.js';
import { EventStream, notPerSession } from '../observe/events.js';
import { opsLogSink } from '../observe/ops-log.js';
import { selectUdpDatapath } from '../datapath/native/select.js';
import { youngGenerationHeap } from '../datapath/native/binding.js';
import { YoungGenerationWatch } from '../core/young-generation.js';
import { startNodeSlice } from '../ops/scheduler-slice.js';
import { selectStreamDatapath } from '../datapath/native/select-stream.js';
import { congestionChoice, congestionView, readKernelCongestion } from '../datapath/congestion.js';
import { GeoHolder } from '../admission/geo-holder.js';
import { CrowdsecHolder } from '../admission/crowdsec/crowdsec-holder.js';
import { VerdictChanges } from '../admission/reverdict.js';
import { crowdsecStatusLogger } from '../admission/crowdsec/status-log.js';
import { Bans } from '../admission/bans/bans.js';
import { DirectStreamDialer } from '../upstream/direct/tcp-dialer.js';
import { DirectDatagramDialer } from '../upstream/direct/udp-dialer.js';
import { ContainerRoutes } from '../discovery/container-routes.js';
import { Ops } from '../ops/ops.js';
import { checkOutputs } from '../ops/output-check.js';
import { exposureLogSink } from '../ops/exposure-log.js';
import { Exposure, startAgent, startGateway, type ExposureDeps } from './exposure.js';
import { fleetBus } from '../gateway/fleet-peers.js';
import { NodeStatus, type ShownParts } from './node-status.js';
import { PartStack } from './part-stack.js';
import { RouteSet } from './route-set.js';
import { RunningNode } from './running-node.js';
import { SerialQueue } from './serial-queue.js';
import type { NodeDeps } from './node-deps.js';
import { Fleet } from '../fleet/fleet.js';
import { chainAdmitters } from '../admission/admitter.js';
import { sluiceVersion } from '../core/version.js';

/**
 * The composition root: builds a running Sluice from a validated config in dependency order
 * (event stream and sinks, datapath, admission, routes, exposure, discovery, then the admin
 * listener and the config watch), each part pushed on one disposal stack (part-stack.ts) as it
 * starts. If any part fails, exactly the parts already built are closed, newest first, and the
 * error is thrown: SluiceError SLUICE_ERR_BIND when a listener cannot bind, SLUICE_ERR_OUTPUT
 * when an output cannot be opened. Aborting `signal` stops the node at once.
 */
export async function startNode(config: SluiceConfig, deps: NodeDeps, signal?: AbortSignal): Promise<RunningNode> {
  const { clock } = deps;
  // ISO 8601 `time`, as in the access log and flow records (pino's default is epoch ms).
  const log: Logger = pino({ level: config.log.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, deps.logDestination as never);
  const events = new EventStream((err) => log.error({ err }, 'an event sink failed and was detached'));
  events.subscribe(opsLogSink(log, clock), notPerSession);
  events.subscribe(exposureLogSink(log, clock), notPerSession);
  const stack = new PartStack(signal);
  try {
    await checkOutputs(config);
    // Datapath: chosen once per process; `datapath: native` where the addon cannot load stops the start here.
    const udp = selectUdpDatapath(config.datapath ?? 'auto', deps.udpNative);
    if (udp.fallback !== undefined) log.warn({ reason: udp.fallback }, 'native UDP datapath unavailable; using the js datapath');
    const congestion = congestionChoice(config.congestion ?? 'auto', deps.kernelCongestion !== undefined ? (deps.kernelCongestion ?? undefined) : readKernelCongestion());
    const stream = selectStreamDatapath(config.datapath ?? 'auto', { congestion });
    const congestionShown = stream.datapath.kind === 'native' ? congestionView(congestion) : undefined;
    if (congestionShown) log.info({ congestion: config.congestion ?? 'auto', ...congestionShown }, 'TCP congestion control of the stream datapath\'s sockets');
    if (stream.fallback !== undefined) log.warn({ reason: stream.fallback }, 'native TCP stream datapath unavailable; using the js datapath');
    // The young generation V8 grew in a burst, given back once the process is quiet (core/young-generation.ts);
    // through the addon, so not where the config keeps the process off it (`datapath: js`).
    const heap = deps.youngGeneration !== undefined ? (deps.youngGeneration ?? undefined) : config.datapath === 'js' ? undefined : youngGenerationHeap();
    if (heap !== undefined) {
      const watch = new YoungGenerationWatch(heap, clock);
      stack.defer('young generation', () => watch.close());
    }
    // Every thread's scheduler slice (scheduler.sliceUs), checked again once the node is up and every few seconds.
    const slice = startNodeSlice(
      { sliceUs: config.scheduler?.sliceUs, datapath: config.datapath ?? 'auto' },
      { clock, warn: (fields, message) => log.warn(fields, message), info: (fields, message) => log.info(fields, message), ...(deps.schedulerSlice !== undefined ? { syscalls: deps.schedulerSlice } : {}) },
    );
    stack.defer('scheduler slice', () => slice.close());
    const cipher = stream.datapath.recordCipher?.();
    if (cipher !== undefined && cipher.cipher === 'openssl') log.info({ reason: cipher.missing }, 'sealed records use OpenSSL (ipsec-mb not loaded)');
    const datagrams = udp.datapath?.datagramCipher?.();
    if (datagrams !== undefined && datagrams.cipher === 'openssl') log.info({ reason: datagrams.missing }, 'tunnel datagrams use OpenSSL (ipsec-mb not loaded)');
    const status = new NodeStatus(udp.datapath?.kind ?? 'js', stream.datapath.kind, cipher?.cipher, datagrams?.cipher, congestionShown);
    const shown = <K extends keyof ShownParts>(key: K, build: (signal: AbortSignal) => ShownParts[K] | Promise<ShownParts[K]>, close: (part: ShownParts[K]) => void | Promise<void>) =>
      status.startOn(stack, key, build, close);
    const geo = new GeoHolder();
    await geo.load(config.geoip?.database);
    // The record sinks come first, so they see the routes come up (and go down last).
    const ops = await stack.start('ops', () => Ops.start(config, { clock, events, log, status }), (o) => o.stop());

    // Admission: live sessions of the routes and of the exposure's listeners are judged again on every change.
    const verdicts = new VerdictChanges(events, clock);
    const crowdsec = await shown('crowdsec', () => new CrowdsecHolder({ clock, onStatus: crowdsecStatusLogger(log), onVerdictsChanged: () => verdicts.changed('crowdsec') }), (c) => c.close());
    // The first pull is waited for here: routes that opt in come up with CrowdSec's decisions.
    await crowdsec.apply(config.crowdsec);
    crowdsec.exposeMetrics(ops.registry);
    const bans = await shown(
      'bans',
      () =>
        Bans.start(config.bans, {
          clock,
          events,
          warn: (fields, message) => log.warn(fields, message),
          onBanned: () => verdicts.changed('bans'),
          rulesOf: (route) => status.route(route)?.config.bans,
          agentEndpointRules: () => status.gatewayBanRules(),
          liveFlows: () => status.sessionRoutes().flatMap((r) => r.sessions()),
        }),
      (b) => b.close(),
    );
    bans.exposeMetrics(ops.registry);

    // Fleet (gateway.fleet, docs/fleet.md): registration, agent presence, fleet-wide limits and bans over Redis.
    const fleetSettings = config.gateway?.fleet;
    const fleet = fleetSettings
      ? await shown(
          'fleet',
          (signal) =>
            Fleet.start(fleetSettings, {
              clock,
              events,
              version: sluiceVersion(),
              local: status.fleetLocal({ agentPortFallback: config.gateway!.listen.port }),
              bans: bans.store,
              warn: (fields, message) => log.warn(fields, message),
            }, signal),
          (f) => f.close(),
        )
      : undefined;
    // Fleet-wide limits judge new sessions only; bans (fleet-wide too) also end live ones.
    const admit = fleet ? chainAdmitters([bans.admitter, verdicts.forNewFlows(fleet.admitter)]) : bans.admitter;

    // Routes: the config's listeners, with the node-wide admission steps.
    const routes = await shown(
      'routes',
      (signal) =>
        RouteSet.start(config, {
          clock,
          events,
          streamDialer: new DirectStreamDialer(undefined, { clock }),
          datagramDialer: new DirectDatagramDialer(undefined, udp.datapath),
          udpDatapath: udp.datapath,
          streamDatapath: stream.datapath,
          geo: () => geo.current,
          crowdsec: (r) => crowdsec.admitter(r),
          admit,
          verdicts,
          signal,
        }),
      (r) => r.shutdown(),
    );

    // Exposure: the gateway and the agent (siblings), with the routes' admission and flow ids.
    const exposureDeps: ExposureDeps = {
      clock,
      events,
      routeDeps: (r) => routes.routeDeps(r),
      nextFlowId: () => routes.nextFlowId(),
      datagramDialer: new DirectDatagramDialer(undefined, udp.datapath),
      datapath: udp.datapath,
      streamDatapath: stream.datapath,
      banned: (client) => bans.store.check(client.address, client.family),
    };
    const gatewayConfig = config.gateway;
    const gateway = gatewayConfig
      ? await shown('gateway', () => startGateway(gatewayConfig, exposureDeps), async (g) => {
          await g.close();
          log.info({ counters: g.counters }, 'gateway: stopped');
        })
      : undefined;
    const agentConfig = config.agent;
    const agent = agentConfig
      ? await shown('agent', () => startAgent(agentConfig, exposureDeps), async (a) => {
          await a.close();
          log.info({ counters: a.counters, datagrams: a.datagramCounters }, 'agent: stopped');
        })
      : undefined;
    const exposure = new Exposure(gateway, agent, config, log);
    // Peer flows toward agents on other gateways of the fleet (docs/fleet.md, "Peers homed on different gateways").
    if (fleet && gateway) gateway.joinFleet(fleetBus(fleet));
    // The first registration ran before the gateway bound its port: register again with it.
    await fleet?.membership.beat();
    stack.defer('exposure verdicts', verdicts.watch(() => exposure.routes()));
    exposure.exposeMetrics(ops.registry);

    // Discovery: routes from container labels, reloaded on the same queue as the config file.
    const queue = new SerialQueue();
    const docker = config.docker;
    const containers = docker
      ? await shown('containers', () => ContainerRoutes.start({ ...config, docker }, { clock, log, node: routes, serialize: (fn) => queue.run(fn) }), (c) => c.close())
      : undefined;

    // Ops: the admin listener binds last, once everything it shows runs.
    await ops.listen(config);
    // The threads started while the node came up (the engines', libuv's pool) get the slice now.
    slice.check();
    return RunningNode.started({ config, deps, log, events, stack, queue, geo, ops, crowdsec, bans, routes, exposure, containers, ...(fleet ? { fleet } : {}) });
  } catch (err) {
    await stack.stop('immediate').catch(() => {});
    throw err;
  }
}
