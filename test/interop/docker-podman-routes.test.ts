import { test } from 'node:test';
import { containerRoutesOnRealEngine } from '../discovery/support/engine-scenario.js';

// The same scenario on Podman's Docker-compatible API (podman system service, as
// ../shared/engines/ci-podman.sh). .ci/run does not install Podman (see docs/containers.md), so a
// machine without it skips this loudly; one with it runs it, and fails under CI if it cannot start.
test('routes from container labels on Podman follow the containers, survive a restart of its API service', { timeout: 180_000 }, (t) =>
  containerRoutesOnRealEngine(t, 'podman', { optional: true }),
);
