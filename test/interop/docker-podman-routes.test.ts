import { test } from 'node:test';
import { containerRoutesOnRealEngine } from '../discovery/support/engine-scenario.js';

// The same scenario on Podman's Docker-compatible API (podman system service started by the test,
// as ../shared/engines/ci-podman.sh does). .ci/run installs Podman: under CI=true it must start.
test('routes from container labels on Podman follow the containers, survive a restart of its API service', { timeout: 180_000 }, (t) =>
  containerRoutesOnRealEngine(t, 'podman'),
);
