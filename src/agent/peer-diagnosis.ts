import type { IceAgentState } from '../ice/agent-state.js';
import type { IceCandidate } from '../ice/candidate.js';
import type { SelectedPairInfo } from '../ice/channel.js';
import type { CandidatePair } from '../ice/checklist.js';

/**
 * The "why is it relayed" view (docs/connect.md): what ICE saw on one peer link, and one sentence
 * in plain words. Pure: built from a snapshot of the ICE agent, so tests can feed it anything.
 */
export interface PeerDiagnosis {
  readonly ice: IceAgentState | 'none';
  /** NAT behaviour inferred from the candidates: per side, what its mapping looked like. */
  readonly nat: { readonly local: string; readonly remote: string };
  readonly localCandidates: readonly string[];
  readonly remoteCandidates: readonly string[];
  readonly skippedCandidates: readonly string[];
  readonly pairs: readonly { readonly local: string; readonly remote: string; readonly state: string; readonly rttMs?: number }[];
  readonly selected: string | undefined;
  /** Why the path is relayed, in plain words; undefined when it is direct. */
  readonly reason: string | undefined;
}

export interface DiagnosisInput {
  readonly wantDirect: boolean;
  readonly state: 'idle' | 'connecting' | 'connected';
  readonly ice:
    | {
        readonly state: IceAgentState;
        readonly local: readonly IceCandidate[];
        readonly remote: readonly IceCandidate[];
        readonly pairs: readonly Readonly<CandidatePair>[];
        readonly selected: SelectedPairInfo | undefined;
      }
    | undefined;
  readonly skipped?: readonly string[];
  readonly suspect?: boolean;
  readonly keys?: boolean;
  readonly peer?: string;
  readonly icePolicy?: 'all' | 'relay';
  /** This side's STUN requests were answered: no srflx candidate then means no NAT. */
  readonly stunAnswered?: boolean;
  /** The gateway's latest answer toward the peer was peer-offline (no success since). */
  readonly peerOffline?: boolean;
}

const text = (c: { type: string; address: string; port: number }) => `${c.type} ${c.address}:${c.port}`;

/** An address:port as a check saw it. */
export interface SeenEndpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * Mapping behaviour of one side (RFC 4787 §4.1): a server-reflexive candidate is its mapping
 * toward the gateway's STUN; what the peer saw of it in a successful connectivity check is its
 * mapping toward the peer: the XOR-MAPPED-ADDRESS of this side's checks (`CandidatePair.mapped`),
 * or, for the peer's side, the remote address its checks came from and answered on. The same
 * address and port toward both destinations is an endpoint-independent mapping (cone NAT); the
 * same address with another port is endpoint-dependent (symmetric NAT). `seenByPeer` holds those
 * observations; peer-reflexive candidates count as observations too.
 */
export function natBehaviour(cands: readonly IceCandidate[], stunAnswered = false, seenByPeer: readonly SeenEndpoint[] = []): string {
  const host = cands.filter((c) => c.type === 'host');
  const srflx = cands.filter((c) => c.type === 'srflx');
  const seen = [...cands.filter((c) => c.type === 'prflx'), ...seenByPeer];
  if (srflx.length === 0 && stunAnswered && host.length > 0) return 'no NAT (the gateway sees the host address)';
  if (srflx.length === 0) return host.length === 0 ? 'unknown (no candidates yet)' : 'no server-reflexive address seen (no NAT, or STUN unanswered)';
  if (srflx.every((s) => host.some((h) => h.address === s.address))) return 'no NAT (public address)';
  const other = seen.find((p) => srflx.some((s) => s.address === p.address && s.port !== p.port));
  if (other) return `maps ports per destination (symmetric NAT): ${srflx[0]!.port} toward the gateway, ${other.port} toward the peer`;
  const same = seen.find((p) => srflx.some((s) => s.address === p.address && s.port === p.port));
  return same ? 'keeps one mapping for every destination (cone NAT)' : 'behind NAT, mapping toward the peer not seen yet';
}

/**
 * What the peer saw of each side in the checks that succeeded: this side's mapped addresses, and
 * the peer's addresses that answered (a succeeded pair's remote, the selected pair's ends).
 */
function seenByChecks(ice: NonNullable<DiagnosisInput['ice']>): { local: SeenEndpoint[]; remote: SeenEndpoint[] } {
  const local: SeenEndpoint[] = [];
  const remote: SeenEndpoint[] = [];
  for (const p of ice.pairs) {
    if (p.state !== 'succeeded' || p.base.kind === 'relay') continue;
    if (p.mapped) local.push(p.mapped);
    remote.push(p.remote);
  }
  const sel = ice.selected;
  if (sel && !sel.relayed) {
    local.push(sel.local);
    remote.push(sel.remote);
  }
  return { local, remote };
}

export function diagnose(i: DiagnosisInput): PeerDiagnosis {
  const ice = i.ice;
  const local = ice?.local ?? [];
  const remote = ice?.remote ?? [];
  const pairs = (ice?.pairs ?? []).map((p) => ({
    local: text(p.base.candidate), remote: text(p.remote), state: p.state, ...(p.rttMs === undefined ? {} : { rttMs: p.rttMs }),
  }));
  const selected = ice?.selected ? `${text(ice.selected.local)} <-> ${text(ice.selected.remote)}${ice.selected.relayed ? ' (TURN)' : ''}` : undefined;
  const seen = ice ? seenByChecks(ice) : { local: [], remote: [] };
  return {
    ice: ice?.state ?? 'none',
    nat: { local: natBehaviour(local, i.stunAnswered, seen.local), remote: natBehaviour(remote, false, seen.remote) },
    localCandidates: local.map(text),
    remoteCandidates: remote.map(text),
    skippedCandidates: i.skipped ?? [],
    pairs,
    selected,
    reason: reasonOf(i, pairs),
  };
}

function reasonOf(i: DiagnosisInput, pairs: readonly { state: string }[]): string | undefined {
  const peer = i.peer ?? 'the peer';
  if (i.peerOffline && i.state !== 'idle') return `peer-offline: ${peer} is not connected to the gateway`;
  if (!i.wantDirect) return 'path: relay is configured';
  if (i.state === 'idle') return 'idle: no traffic, no path set up';
  const ice = i.ice;
  if (!ice) return 'no ICE attempt running (waiting for the next retry)';
  if (ice.state === 'connected' && !i.suspect && i.keys) {
    if (!ice.selected?.relayed) return undefined;
    if (i.icePolicy === 'relay') return 'icePolicy: relay: only TURN candidates are used, so the path goes through the TURN server';
    return 'ICE selected a pair through a TURN relay: no pair without a relay answered';
  }
  if (i.suspect) return 'the direct path stopped answering (no keepalive-ack); traffic went back to the relay until it answers again';
  if (!i.keys) return `waiting for ${peer}'s answer to the offer`;
  if (ice.state === 'idle' || ice.state === 'checking') {
    if (ice.remote.length === 0 && (i.skipped?.length ?? 0) > 0) return `every candidate of ${peer} is in an address class peerCandidates does not allow: ${i.skipped!.join(', ')}`;
    const tried = pairs.filter((p) => p.state !== 'frozen' && p.state !== 'waiting').length;
    return `ICE is checking (${tried} of ${pairs.length} pairs tried so far)`;
  }
  if (ice.state === 'disconnected') return 'consent checks on the direct path are not answered (RFC 7675); relayed meanwhile';
  const localNat = natBehaviour(ice.local);
  const remoteNat = natBehaviour(ice.remote);
  const symLocal = localNat.startsWith('maps ports per destination');
  const symRemote = remoteNat.startsWith('maps ports per destination');
  if (ice.remote.length === 0) return `${peer} sent no usable candidate${i.skipped?.length ? ` (skipped by peerCandidates: ${i.skipped.join(', ')})` : ''}`;
  if (symLocal && symRemote) return 'both sides map ports per destination (symmetric NAT): neither can predict the port the other will use';
  if (symLocal) return `this side maps ports per destination (symmetric NAT) and ${peer}'s NAT filters packets from addresses it has not sent to`;
  if (symRemote) return `${peer} maps ports per destination (symmetric NAT) and this side's NAT filters packets from addresses it has not sent to`;
  const skipped = i.skipped ?? [];
  const note = skipped.length === 0 ? '' : `; skipped by peerCandidates: ${skipped.join(', ')} (if both agents share that network, allow its class on both)`;
  if (!ice.local.some((c) => c.type === 'srflx') && !i.stunAnswered) return `this side has no server-reflexive candidate: the gateway did not answer STUN on its UDP port${note}`;
  if (!ice.remote.some((c) => c.type === 'srflx' || c.type === 'prflx')) return `${peer} has no server-reflexive candidate: it cannot be reached from outside its NAT${note}`;
  return `no candidate pair answered (${pairs.length} tried): both NATs drop packets from addresses they have not sent to, and at least one maps ports per destination${note}`;
}
