import type { Agent } from '../agent/agent.js';

/** The agent as the ops layer reads it (views, metrics, health): its state and counters, none of its controls. */
export type AgentStatus = Pick<Agent, 'config' | 'state' | 'connectedSince' | 'lastDisconnect' | 'datagramMode' | 'services' | 'connectRoutes' | 'peers' | 'local' | 'counters' | 'datagramCounters' | 'homes' | 'udpSessions' | 'activeCounts'>;
