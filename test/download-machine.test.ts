/**
 * The real downloadRunner actor inside the agent machine (every other actor faked,
 * SimulatedClock for the backoff): transient GitHub failures retried through
 * attempt → backoff → attempt, terminal ones reported at once as bootstrap_failed,
 * SIGTERM mid-download cancelling the transfer.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createActor, SimulatedClock } from 'xstate';
import { downloadRunner } from '../actors/download-runner.js';
import { agentMachine } from '../machines/agent.machine.js';
import type { TelemetryMessage } from '../machines/outcome.js';
import { startFakeGitHub, type FakeGitHub } from './support/fake-github.js';
import { FakeActors } from './support/fake-actors.js';
import { buildFakeRunnerTarball } from './support/fake-runner.js';

const VERSION = '2.330.0';
let tarball: Buffer;
let root: string;
let github: FakeGitHub | undefined;

beforeAll(async () => {
  tarball = await buildFakeRunnerTarball({ version: VERSION, behavior: 'succeed' });
});
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'runs-fleet-download-machine-'));
});
afterEach(async () => {
  await github?.close();
  github = undefined;
  await rm(root, { recursive: true, force: true });
});

function start(gh: FakeGitHub) {
  const fake = FakeActors.autoAll();
  const clock = new SimulatedClock();
  const noS3 = (() => {
    throw new Error('no S3 in this test');
  }) as unknown as (region?: string) => S3Client;
  const actors = {
    ...fake.actors(),
    downloadRunner: downloadRunner({ logger: pino({ level: 'silent' }), s3: noS3, owner: async () => undefined }),
  };
  const actor = createActor(agentMachine.provide({ actors }), {
    clock,
    input: {
      env: {
        RUNS_FLEET_RUNNER_DIR: join(root, 'runner'),
        RUNS_FLEET_RUNNER_VERSION: VERSION,
        RUNS_FLEET_GITHUB_API_URL: gh.apiUrl,
        RUNS_FLEET_DOWNLOAD_MIN_FREE_MB: '1',
        // The loop under test is downloading's own; the standby prefetch is the same actor (e2e).
        RUNS_FLEET_PREFETCH_RUNNER: 'false',
      },
      now: () => clock.now(),
    },
    logger: () => {},
  });
  actor.start();
  const finalMessage = () =>
    fake
      .callsOf('sendTelemetry')
      .map((i) => i.message as TelemetryMessage)
      .find((m) => m.status !== 'started');
  return { fake, clock, actor, finalMessage };
}

const apiCalls = (gh: FakeGitHub) => gh.requests.filter((r) => r.path.startsWith('/api/')).length;

/** Wait (real time, bounded) until `predicate` holds; moves the simulated clock through backoffs. */
async function until(t: ReturnType<typeof start>, predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out in state ${JSON.stringify(t.actor.getSnapshot().value)}`);
    if (t.actor.getSnapshot().matches({ downloading: 'backoff' })) t.clock.increment(8_000);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('downloading with the real actor', () => {
  it('GitHub 500 twice, then success: three attempts, then registering with the installed runner', async () => {
    github = await startFakeGitHub({ version: VERSION, tarballs: { x64: tarball } });
    github.failNext(2, 500);
    const t = start(github);

    await until(t, () => t.fake.callsOf('registerRunner').length > 0);

    expect(t.actor.getSnapshot().context.downloadAttempt).toBe(3);
    expect(apiCalls(github)).toBe(3);
    expect(t.fake.callsOf('registerRunner')[0].runner).toEqual({ dir: join(root, 'runner'), version: VERSION, source: 'github' });
  });

  it('404: one attempt, bootstrap_failed, the runner never started', async () => {
    github = await startFakeGitHub({ version: '2.329.0', tarballs: { x64: tarball } });
    const t = start(github);

    await until(t, () => t.actor.getSnapshot().matches('finished'));

    expect(t.actor.getSnapshot().context.downloadAttempt).toBe(1);
    expect(apiCalls(github)).toBe(1);
    expect(t.finalMessage()).toMatchObject({ status: 'bootstrap_failed' });
    expect(t.finalMessage()!.error).toContain('answered 404');
    expect(t.fake.runner.spawned).toBe(0);
  });

  it('checksum mismatch: bootstrap_failed with both hashes, runner dir empty, runner never started', async () => {
    github = await startFakeGitHub({ version: VERSION, tarballs: { x64: tarball }, checksum: 'wrong' });
    const t = start(github);

    await until(t, () => t.actor.getSnapshot().matches('finished'));

    expect(t.actor.getSnapshot().context.downloadAttempt).toBe(1);
    expect(apiCalls(github)).toBe(1);
    expect(t.finalMessage()).toMatchObject({ status: 'bootstrap_failed' });
    expect(t.finalMessage()!.error).toMatch(/checksum mismatch .* expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/);
    expect(t.fake.callsOf('registerRunner')).toHaveLength(0);
    expect(t.fake.runner.spawned).toBe(0);
    expect(await readdir(join(root, 'runner'))).toEqual([]);
  });

  it('SIGTERM mid-download: the transfer is cancelled within a second and the agent goes on to terminate', async () => {
    github = await startFakeGitHub({ version: VERSION, tarballs: { x64: tarball } });
    github.setThrottle(1_000); // ~4.5 s for the tarball
    const t = start(github);
    await until(t, () => github!.requests.some((r) => r.path.startsWith('/_objects/')));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await readdir(join(root, 'runner'))).some((n) => n.startsWith('.staging-'))).toBe(true);

    const sentAt = Date.now();
    t.fake.watchers.processWatcher!.sendBack!({ type: 'SIGTERM', signal: 'SIGTERM' });
    await until(t, () => t.actor.getSnapshot().matches('finished'), 1_000);
    let leftovers = await readdir(join(root, 'runner'));
    while (leftovers.length > 0 && Date.now() - sentAt < 1_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      leftovers = await readdir(join(root, 'runner'));
    }

    expect(leftovers).toEqual([]);
    expect(Date.now() - sentAt).toBeLessThan(1_000);
    expect(t.fake.callsOf('terminateInstance')).toHaveLength(1);
    expect(t.fake.runner.spawned).toBe(0);
  });
});
