import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSluiceError } from '../../src/core/errors.js';
import type { TransitionTable } from '../../src/core/state-machine.js';
import { AGENT_MOVES, nextAgentState, type AgentState } from '../../src/agent/agent-state.js';
import { PEER_LINK_MOVES, nextPeerState, type PeerState } from '../../src/agent/peer-link-state.js';

/** Every pair of states: the legal ones move, every other one throws SLUICE_ERR_STATE naming the move. */
function checkAll<S extends string>(states: readonly S[], legal: readonly string[], next: (from: S, to: S) => S): void {
  for (const from of states) {
    for (const to of states) {
      const key = `${from}>${to}`;
      if (legal.includes(key)) assert.equal(next(from, to), to, key);
      else assert.throws(() => next(from, to), (e) => isSluiceError(e, 'SLUICE_ERR_STATE') && e.message.includes(`${from} → ${to}`), key);
    }
  }
}

function sameStates<S extends string>(table: TransitionTable<S>, states: readonly S[]): void {
  assert.deepEqual(Object.keys(table).sort(), [...states].sort());
}

test('agent: connecting, connected, waiting, standby, closed; closed is final', () => {
  const states: readonly AgentState[] = ['connecting', 'connected', 'waiting', 'standby', 'closed'];
  sameStates(AGENT_MOVES, states);
  checkAll(states, [
    'connecting>connected', // authenticated
    'connecting>waiting', // the attempt failed: back off
    'connecting>closed',
    'connected>waiting', // the connection ended: back off
    'connected>closed',
    'waiting>connecting', // the backoff delay ran out, or reconnectNow
    'waiting>closed',
    'connecting>standby', // past agent.homes at start: held back
    'waiting>standby', // past agent.homes after the backoff: held back
    'standby>connecting', // a held gateway was lost
    'standby>closed',
  ], nextAgentState);
});

test('peer link: idle, connecting, connected; a new ICE outcome while connected stays connected', () => {
  const states: readonly PeerState[] = ['idle', 'connecting', 'connected'];
  sameStates(PEER_LINK_MOVES, states);
  checkAll(states, [
    'idle>connecting', // a flow, or the peer's offer, woke the link
    'connecting>connected', // the relay carried a flow, or ICE selected a pair, or ICE failed back to the relay
    'connecting>idle',
    'connected>connected', // ICE selected a pair again, or an attempt failed back to the relay
    'connected>idle', // idle timeout, or the peer closed the attempt
  ], nextPeerState);
});
