import { Counter, Gauge, type Registry } from 'prom-client';
import type { AgentStatus } from './agent-status.js';
import type { Gateway } from '../gateway/gateway.js';

/**
 * Prometheus metrics of the gateway and the agent, read from their cumulative counters at scrape
 * time (never one call per datagram). Names in docs/expose.md.
 *
 * Only the families of what runs are registered: `sluice_gateway_*` where `read()` has a gateway
 * now, `sluice_agent_*` where it has an agent (neither changes without a restart), so a pure
 * gateway exports no `sluice_agent_connected 0` for an alert to fire on.
 */
export function registerExposeMetrics(registry: Registry, read: () => { gateway: Gateway | undefined; agent: AgentStatus | undefined }): void {
  const registers = [registry];
  const now = read();
  const runs = (name: string) => (name.startsWith('sluice_gateway_') ? now.gateway !== undefined : now.agent !== undefined);
  const counter = (name: string, help: string, labelNames: string[], fill: (inc: (labels: Record<string, string>, n: number) => void) => void) =>
    runs(name) &&
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill((labels, n) => {
          if (n > 0) this.inc(labels, n);
        });
      },
    });
  const gauge = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string>, n: number) => void) => void) =>
    runs(name) &&
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill((labels, n) => this.set(labels, n));
      },
    });

  counter('sluice_gateway_auth_total', 'Agent handshakes at the gateway, by result (ok, resumed, or the refusal reason)', ['result'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    inc({ result: 'ok' }, c.authOk - c.authResumed);
    inc({ result: 'resumed' }, c.authResumed);
    for (const [reason, n] of Object.entries(c.authRefused)) inc({ result: reason }, n ?? 0);
    inc({ result: 'pre-auth-capped' }, c.preAuthCapped);
    inc({ result: 'pre-auth-evicted' }, c.preAuthEvicted);
    inc({ result: 'pre-auth-banned' }, c.preAuthBanned);
    inc({ result: 'tls-error' }, c.tlsErrors);
  });
  counter('sluice_gateway_data_connections_total', 'Data connections at the tunnel port, by result (accepted, or why one was closed before use)', ['result'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    inc({ result: 'accepted' }, c.dataConnAccepted);
    inc({ result: 'reused' }, c.dataConnReused);
    for (const [reason, n] of Object.entries(c.dataConnRefused)) inc({ result: reason }, n);
  });
  counter('sluice_gateway_data_connection_streams_total', 'Exposed TCP streams carried on a data connection (the others ride the control connection)', [], (inc) => {
    const c = read().gateway?.counters;
    if (c) inc({}, c.dataConnStreams);
  });
  counter('sluice_gateway_data_connection_fallbacks_total', 'Exposed TCP streams that found their data connection dead (no READY) and went multiplexed, by why', ['reason'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    for (const [reason, n] of Object.entries(c.dataConnDead)) inc({ reason }, n);
  });
  gauge('sluice_gateway_data_connections_idle', 'Idle data connections the agents hold open to this gateway now', [], (set) => {
    const g = read().gateway;
    if (g) set({}, g.agents().reduce((n, l) => n + (l.dataConns?.idle ?? 0), 0));
  });
  counter('sluice_gateway_trunk_streams_total', 'Exposed TCP streams by how they rode a trunk: attached, or fell back to the control connection (the trunk was gone, or silent: no READY)', ['result'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    inc({ result: 'attached' }, c.trunkStreams);
    inc({ result: 'fallback' }, c.trunkFallbacks);
    inc({ result: 'no-ready' }, c.trunkNoReady);
  });
  gauge('sluice_gateway_trunks', 'Trunks the agents hold open to this gateway now', [], (set) => {
    const g = read().gateway;
    if (g) set({}, g.agents().reduce((n, l) => n + (l.dataConns?.trunks?.size ?? 0), 0));
  });
  counter('sluice_gateway_publish_total', 'PUBLISH requests, by result (ok or the refusal code)', ['result'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    inc({ result: 'ok' }, c.publishOk);
    for (const [code, n] of Object.entries(c.publishRefused)) inc({ result: code }, n ?? 0);
  });
  counter('sluice_gateway_datagrams_total', 'Exposed-service datagrams between gateway and agents, by direction and path (udp, tls, dropped)', ['direction', 'path'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    inc({ direction: 'to-agent', path: 'udp' }, c.datagramsToAgent);
    inc({ direction: 'to-agent', path: 'tls' }, c.datagramsToAgentOverTls);
    inc({ direction: 'to-agent', path: 'dropped' }, c.datagramsToAgentDropped);
    inc({ direction: 'to-agent', path: 'agent-budget' }, c.datagramsToAgentShed['agent-budget']);
    inc({ direction: 'to-agent', path: 'session-share' }, c.datagramsToAgentShed['session-share']);
    inc({ direction: 'to-agent', path: 'stale' }, c.datagramsToAgentShed.stale);
    inc({ direction: 'from-agent', path: 'udp' }, c.datagramsFromAgent);
    inc({ direction: 'from-agent', path: 'tls' }, c.datagramsFromAgentOverTls);
  });
  counter('sluice_gateway_udp_send_errors_total', 'Datagrams the gateway\'s shared UDP port could not send (the kernel refused them), from JavaScript or a relayed peer flow in the batch', [], (inc) => {
    const c = read().gateway?.counters;
    if (c) inc({}, c.udpSendErrors);
  });
  counter('sluice_gateway_datagrams_rejected_total', 'Tunnel datagrams refused before use, by reason (nothing is sent back for them)', ['reason'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    for (const [reason, n] of Object.entries(c.datagramRejected)) inc({ reason }, n);
    inc({ reason: 'no-session' }, c.datagramUnknownKey);
  });
  counter('sluice_gateway_unverified_reply_bytes_total', 'Bytes of what the gateway UDP socket answers by itself (STUN, keepalive acks) to sources it has not verified, by direction; out <= 3x in', ['direction'], (inc) => {
    const c = read().gateway?.replies.counters;
    if (!c) return;
    inc({ direction: 'in' }, c.bytesIn);
    inc({ direction: 'out' }, c.bytesOut);
  });
  counter('sluice_gateway_unverified_replies_total', 'Answers of the gateway UDP socket to unverified sources, by result (sent, or refused as over 3x the request)', ['result'], (inc) => {
    const c = read().gateway?.replies.counters;
    if (!c) return;
    inc({ result: 'sent' }, c.replies);
    inc({ result: 'refused' }, c.refused);
  });
  counter('sluice_gateway_agent_address_moves_total', "Moves of an agent's UDP address by an authenticated datagram (NAT rebinding)", [], (inc) => {
    const c = read().gateway?.counters;
    if (c) inc({}, c.agentAddressMoves);
  });
  counter('sluice_gateway_signals_total', 'SIGNAL messages between agents, by result (forwarded or the SIGNAL_ERROR code)', ['result'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    inc({ result: 'forwarded' }, c.signalsForwarded);
    for (const [code, n] of Object.entries(c.signalsRefused)) inc({ result: code }, n ?? 0);
  });
  counter('sluice_gateway_peer_flows_total', 'PEER_OPEN requests, by transport and result (ok, the refusal code, or why the target did not accept a stream)', ['transport', 'result'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    for (const [transport, results] of Object.entries(c.peerFlows)) for (const [result, n] of Object.entries(results)) inc({ transport, result }, n ?? 0);
  });
  counter('sluice_gateway_peer_relayed_datagrams_total', 'Datagrams of relayed UDP peer flows, by direction (to-service, to-opener, or dropped toward the opener)', ['direction'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    inc({ direction: 'to-service' }, c.peerDatagramsToService);
    inc({ direction: 'to-opener' }, c.peerDatagramsToOpener);
    inc({ direction: 'to-opener-dropped' }, c.peerDatagramsDropped);
  });
  counter('sluice_gateway_peer_relayed_bytes_total', 'Payload bytes of relayed peer flows, by transport and direction (tcp: counted when a stream ends)', ['transport', 'direction'], (inc) => {
    const c = read().gateway?.counters;
    if (!c) return;
    inc({ transport: 'udp', direction: 'to-service' }, c.peerBytesToService);
    inc({ transport: 'udp', direction: 'to-opener' }, c.peerBytesToOpener);
    inc({ transport: 'tcp', direction: 'to-service' }, c.peerStreamBytesToService);
    inc({ transport: 'tcp', direction: 'to-opener' }, c.peerStreamBytesToOpener);
  });
  gauge('sluice_gateway_peer_flows', 'Relayed peer flows open now, by transport (tcp includes PEER_OPENs waiting for their STREAM_OPEN)', ['transport'], (set) => {
    const g = read().gateway;
    if (!g) return;
    for (const [transport, n] of Object.entries(g.peers.flowCounts())) set({ transport }, n);
  });
  gauge('sluice_gateway_agents', 'Authenticated agents, by state (attached: control connection up; detached: within the resume grace)', ['state'], (set) => {
    const g = read().gateway;
    if (!g) return;
    const agents = g.agents();
    set({ state: 'attached' }, agents.filter((a) => a.state === 'attached').length);
    set({ state: 'detached' }, agents.filter((a) => a.state === 'detached').length);
  });
  gauge('sluice_agent_connected', '1 while the agent holds an authenticated control connection to its gateway', [], (set) => {
    const a = read().agent;
    if (a) set({}, a.state === 'connected' ? 1 : 0);
  });
  gauge('sluice_agent_gateways', 'Gateways the agent is homed on, by state (connected, connecting, waiting, standby)', ['state'], (set) => {
    const a = read().agent;
    if (!a) return;
    for (const state of ['connected', 'connecting', 'waiting', 'standby'] as const) set({ state }, a.homes.filter((h) => h.state === state).length);
  });
  gauge('sluice_agent_datagrams_over_udp', '1 while the agent sends datagrams over UDP, 0 while they fall back to the TLS connection', [], (set) => {
    const a = read().agent;
    if (a) set({}, a.datagramMode === 'udp' ? 1 : 0);
  });
  counter('sluice_agent_connect_total', 'Connection attempts of the agent, by result (ok, resumed, or why it failed)', ['result'], (inc) => {
    const c = read().agent?.counters;
    if (!c) return;
    inc({ result: 'ok' }, c.connects - c.resumed);
    inc({ result: 'resumed' }, c.resumed);
    for (const [reason, n] of Object.entries(c.refused)) inc({ result: reason }, n ?? 0);
  });
  counter('sluice_agent_trunk_ends_total', 'Trunks of the agent that ended, by why: the engine\'s code (ESEALED_TRUNCATED, ECONNRESET...), idle (replaced after an idle spell) or closed (with the control connection)', ['reason'], (inc) => {
    const c = read().agent?.counters;
    if (!c) return;
    for (const [reason, n] of Object.entries(c.trunkEnds ?? {})) inc({ reason }, n ?? 0);
  });
  counter('sluice_agent_publish_refused_total', 'Services the gateway refused to publish, by refusal code', ['code'], (inc) => {
    const c = read().agent?.counters;
    if (!c) return;
    for (const [code, n] of Object.entries(c.publishRefused)) inc({ code }, n ?? 0);
  });
  counter('sluice_agent_datagrams_total', 'Exposed-service datagrams between agent and gateway, by direction and path (udp, tls, dropped)', ['direction', 'path'], (inc) => {
    const d = read().agent?.datagramCounters;
    if (!d) return;
    inc({ direction: 'to-gateway', path: 'udp' }, d.toGateway);
    inc({ direction: 'to-gateway', path: 'tls' }, d.toGatewayOverTls);
    inc({ direction: 'to-gateway', path: 'dropped' }, d.toGatewayDropped);
    inc({ direction: 'to-gateway', path: 'agent-budget' }, d.shed['agent-budget']);
    inc({ direction: 'to-gateway', path: 'session-share' }, d.shed['session-share']);
    inc({ direction: 'to-gateway', path: 'stale' }, d.shed.stale);
    inc({ direction: 'from-gateway', path: 'udp' }, d.fromGateway);
    inc({ direction: 'from-gateway', path: 'tls' }, d.fromGatewayOverTls);
  });
}
