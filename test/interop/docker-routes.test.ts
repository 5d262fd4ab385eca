import { test } from 'node:test';
import { containerRoutesOnRealEngine } from '../discovery/support/engine-scenario.js';

// Docker (Debian's docker.io, started by the test with live restore, host networking only).
test('routes from container labels on a real Docker engine follow the containers, survive an engine restart', { timeout: 180_000 }, (t) =>
  containerRoutesOnRealEngine(t, 'docker'),
);
