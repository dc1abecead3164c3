/**
 * Standby (booting waits for the config the orchestrator writes after launch) and the runner
 * prefetch, on the machine with fake actors and a SimulatedClock.
 */
import { describe, expect, it } from '@jest/globals';
import { createActor, SimulatedClock } from 'xstate';
import { agentMachine, STANDBY_FAST_POLLS, standbyPollMs } from '../machines/agent.machine.js';
import { agentOutcome, type TelemetryMessage } from '../machines/outcome.js';
import type { AgentContext } from '../machines/types.js';
import { ConfigNotFoundError, ConfigReadError, UnusableConfigError } from '../services/aws/ssm-config.js';
import { defaultOutputs, FakeActors, settle } from './support/fake-actors.js';

function start(env: Record<string, string> = {}, configure: (fake: FakeActors) => void = () => {}) {
  const fake = FakeActors.autoAll();
  fake.auto.readRunnerConfig = undefined; // each poll waits for the test
  configure(fake);
  const clock = new SimulatedClock();
  clock.set(Date.parse('2026-12-01T10:00:00Z'));
  const actor = createActor(agentMachine.provide({ actors: fake.actors() }), { clock, input: { env, now: () => clock.now(), bootUptimeSeconds: 21.5 }, logger: () => {} });
  actor.start();
  const ctx = () => actor.getSnapshot().context as AgentContext;
  const messages = () => fake.callsOf('sendTelemetry').map((i) => i.message as TelemetryMessage);
  return { fake, clock, actor, ctx, messages, value: () => actor.getSnapshot().value };
}

const notFound = () => new ConfigNotFoundError('runner config /runs-fleet/runners/i-0fake0000000000001/config is not in SSM yet');

describe('standby: waiting for the runner config', () => {
  it('polls every 2 s for 15 polls, then every 5 s ±20 %, until the config appears', async () => {
    const t = start();
    await settle();
    let polls = 0;
    // polls at 0, 2, … 30 s: fifteen 2 s waits …
    for (let i = 0; i < STANDBY_FAST_POLLS; i++) {
      t.fake.take('readRunnerConfig').reject(notFound());
      polls++;
      await settle();
      expect(t.value()).toEqual({ booting: { standby: 'waiting' } });
      t.clock.increment(1_999);
      await settle();
      expect(t.fake.pending.some((p) => p.src === 'readRunnerConfig')).toBe(false);
      t.clock.increment(1);
      await settle();
    }
    // … then the slow phase: no poll before 4 s (5 s − 20 %), one by 6 s (5 s + 20 %).
    t.fake.take('readRunnerConfig').reject(notFound());
    polls++;
    await settle();
    t.clock.increment(3_999);
    await settle();
    expect(t.fake.pending.some((p) => p.src === 'readRunnerConfig')).toBe(false);
    t.clock.increment(2_001);
    await settle();
    expect(t.fake.callsOf('readRunnerConfig')).toHaveLength(polls + 1);
    // The config appears: on to the job.
    t.fake.take('readRunnerConfig').resolve(defaultOutputs().readRunnerConfig);
    await settle();
    expect(t.ctx().standby.polls).toBe(polls);
    expect(t.fake.callsOf('registerRunner')).toHaveLength(1);
    expect(t.ctx().configFoundAtMs).toBe(t.clock.now());
  });

  it('standbyPollMs: fast, slow with jitter, longer and capped while throttled', () => {
    expect(standbyPollMs(0, 0, () => 0)).toBe(2_000);
    expect(standbyPollMs(14, 0, () => 1)).toBe(2_000);
    expect(standbyPollMs(15, 0, () => 0)).toBe(4_000);
    expect(standbyPollMs(15, 0, () => 0.5)).toBe(5_000);
    expect(standbyPollMs(15, 0, () => 1)).toBe(6_000);
    expect(standbyPollMs(3, 1, () => 0.5)).toBe(10_000);
    expect(standbyPollMs(3, 2, () => 0.5)).toBe(20_000);
    expect(standbyPollMs(3, 9, () => 0.5)).toBe(60_000);
  });

  it('a throttled poll backs off further; read errors are logged at most once a minute', async () => {
    const lines: string[] = [];
    const fake = FakeActors.autoAll();
    fake.auto.readRunnerConfig = undefined;
    const clock = new SimulatedClock();
    const actor = createActor(agentMachine.provide({ actors: fake.actors() }), {
      clock,
      input: { env: {}, now: () => clock.now() },
      logger: (...parts: unknown[]) => lines.push(parts.map(String).join(' ')),
    });
    actor.start();
    await settle();
    const throttled = () => new ConfigReadError('could not read /x from SSM (ThrottlingException: Rate exceeded)', { throttled: true });
    for (let i = 0; i < 10; i++) {
      fake.take('readRunnerConfig').reject(throttled());
      await settle();
      clock.increment(75_000);
      await settle();
    }
    const ctx = actor.getSnapshot().context as AgentContext;
    expect(ctx.standby).toMatchObject({ polls: 10, errors: 10, throttled: 10 });
    // The first throttled poll waits 10 s ±20 %, not 2 s.
    expect(standbyPollMs(1, 1, () => 0)).toBeGreaterThanOrEqual(8_000);
    const logged = lines.filter((l) => l.includes('ThrottlingException'));
    expect(logged.length).toBeGreaterThanOrEqual(5);
    expect(logged.length).toBeLessThanOrEqual(10);
    expect(lines.some((l) => /more since the last one/.test(l)) || logged.length === 10).toBe(true);
    actor.stop();
  });

  it('SIGTERM while waiting: standby ends, exit 0, no telemetry, no termination, the prefetch stopped', async () => {
    const t = start({}, (f) => (f.auto.downloadRunner = 'hang'));
    await settle();
    expect(t.fake.journal).toContain('call:prefetchRunner');
    t.fake.take('readRunnerConfig').reject(notFound());
    await settle();
    t.fake.watchers.processWatcher!.sendBack!({ type: 'SIGTERM', signal: 'SIGTERM' });
    await settle();
    expect(t.value()).toBe('standbyEnded');
    expect(t.actor.getSnapshot().status).toBe('done');
    expect(t.messages()).toEqual([]);
    expect(t.fake.callsOf('terminateInstance')).toEqual([]);
    expect(t.fake.journal).toContain('stop:prefetchRunner');
    expect(agentOutcome(t.ctx())).toMatchObject({ status: 'no_job', standbyEnd: 'sigterm', exitCode: 0, terminationRequested: false });
  });

  it('SIGTERM while a poll reads: the poll finishes; a config it took is reported, not dropped', async () => {
    const t = start();
    await settle();
    expect(t.value()).toEqual({ booting: { standby: 'polling' } });
    t.fake.watchers.processWatcher!.sendBack!({ type: 'SIGTERM', signal: 'SIGTERM' });
    await settle();
    // Still reading: the poll may already have taken the config out of SSM.
    expect(t.value()).toEqual({ booting: { standby: 'polling' } });
    t.fake.take('readRunnerConfig').resolve(defaultOutputs().readRunnerConfig);
    await settle();
    expect(t.fake.callsOf('registerRunner')).toEqual([]);
    const final = t.messages().at(-1)!;
    expect(final).toMatchObject({ status: 'interrupted', job_id: (defaultOutputs().readRunnerConfig as { jobId: string }).jobId });
    expect(final.error).toMatch(/SIGTERM while reading the runner config/);
    expect(t.fake.callsOf('terminateInstance')).toHaveLength(1);
  });

  it('SIGTERM while a poll reads and no config comes: standby ends as if it had been waiting', async () => {
    const t = start();
    await settle();
    t.fake.watchers.processWatcher!.sendBack!({ type: 'SIGTERM', signal: 'SIGTERM' });
    await settle();
    t.fake.take('readRunnerConfig').reject(notFound());
    await settle();
    expect(t.value()).toBe('standbyEnded');
    expect(t.messages()).toEqual([]);
    expect(agentOutcome(t.ctx())).toMatchObject({ standbyEnd: 'sigterm', exitCode: 0, terminationRequested: false });
  });

  it('the standby deadline (from agent start) ends it the same way', async () => {
    const t = start({ RUNS_FLEET_STANDBY_DEADLINE_MINUTES: '0.1' });
    await settle();
    for (let elapsed = 0; elapsed < 6_000; elapsed += 2_000) {
      t.fake.take('readRunnerConfig').reject(notFound());
      await settle();
      t.clock.increment(2_000);
      await settle();
    }
    expect(t.value()).toBe('standbyEnded');
    expect(t.messages()).toEqual([]);
    expect(t.fake.callsOf('terminateInstance')).toEqual([]);
    expect(agentOutcome(t.ctx())).toMatchObject({ standbyEnd: 'deadline', exitCode: 0 });
  });

  it('a crash while waiting ends standby with exit 1 (systemd powers off), nothing reported', async () => {
    const t = start();
    await settle();
    t.fake.watchers.processWatcher!.sendBack!({ type: 'PANIC', error: 'boom' });
    await settle();
    expect(t.value()).toBe('standbyEnded');
    expect(t.messages()).toEqual([]);
    expect(agentOutcome(t.ctx())).toMatchObject({ standbyEnd: 'panic', exitCode: 1 });
  });

  it('an unusable config is reported (to the queue it named) as bootstrap_failed, then terminated', async () => {
    const t = start();
    await settle();
    t.fake.take('readRunnerConfig').reject(new UnusableConfigError('runner config /x is invalid: job_id: expected a decimal integer', 'https://sqs.us-east-1.amazonaws.com/1/q'));
    await settle();
    const final = t.fake.callsOf('sendTelemetry').at(-1);
    expect(final.queueUrl).toBe('https://sqs.us-east-1.amazonaws.com/1/q');
    expect(final.message).toMatchObject({ status: 'bootstrap_failed', job_id: null, error: 'runner config /x is invalid: job_id: expected a decimal integer' });
    expect(t.fake.callsOf('terminateInstance')).toHaveLength(1);
    expect(t.fake.journal).toContain('stop:prefetchRunner');
  });
});

describe('the runner prefetch during standby', () => {
  it('a runner ready before the config is used at once: downloading passes straight through', async () => {
    const t = start();
    await settle(); // the prefetch (auto) has reported RUNNER_PREFETCHED
    expect(t.ctx().prefetch).toBe('done');
    t.clock.increment(6_000);
    t.fake.take('readRunnerConfig').reject(notFound());
    await settle();
    t.clock.increment(2_000);
    await settle();
    t.fake.take('readRunnerConfig').resolve(defaultOutputs().readRunnerConfig);
    await settle();
    expect(t.fake.callsOf('downloadRunner')).toEqual([]);
    expect(t.fake.callsOf('registerRunner')).toHaveLength(1);
    expect(t.ctx().timings.downloading).toBe(0);
  });

  it('a download still running when the config arrives is awaited, not started again', async () => {
    const t = start({}, (f) => (f.auto.downloadRunner = 'hang'));
    await settle();
    t.fake.take('readRunnerConfig').resolve(defaultOutputs().readRunnerConfig);
    await settle();
    expect(t.value()).toEqual({ downloading: 'awaitingPrefetch' });
    t.clock.increment(3_000);
    t.fake.watchers.prefetchRunner!.sendBack!({ type: 'RUNNER_PREFETCHED', runner: defaultOutputs().downloadRunner as never });
    await settle();
    expect(t.fake.callsOf('downloadRunner')).toEqual([]);
    expect(t.fake.callsOf('registerRunner')).toHaveLength(1);
    expect(t.ctx().timings.downloading).toBe(3);
  });

  it('a transient prefetch failure counts as the first attempt: backoff, then attempt 2', async () => {
    const t = start({}, (f) => (f.auto.downloadRunner = undefined));
    await settle();
    t.fake.watchers.prefetchRunner!.sendBack!({ type: 'PREFETCH_FAILED', failure: { message: 'HTTP 503', retriable: true } });
    t.fake.take('readRunnerConfig').resolve(defaultOutputs().readRunnerConfig);
    await settle();
    expect(t.value()).toEqual({ downloading: 'backoff' });
    t.clock.increment(8_000);
    await settle();
    expect(t.fake.callsOf('downloadRunner').map((i) => i.attempt)).toEqual([2]);
  });

  it('a terminal prefetch failure is the download failure', async () => {
    const t = start({}, (f) => (f.auto.downloadRunner = { reject: Object.assign(new Error('checksum mismatch: expected a, got b'), { retriable: false }) }));
    await settle();
    t.fake.take('readRunnerConfig').resolve(defaultOutputs().readRunnerConfig);
    await settle();
    expect(t.fake.callsOf('downloadRunner')).toEqual([]);
    expect(t.messages().at(-1)).toMatchObject({ status: 'bootstrap_failed', error: 'checksum mismatch: expected a, got b' });
  });

  it('RUNS_FLEET_PREFETCH_RUNNER=false downloads only once the config is there', async () => {
    const t = start({ RUNS_FLEET_PREFETCH_RUNNER: 'false' });
    await settle();
    expect(t.fake.journal).not.toContain('call:prefetchRunner');
    t.fake.take('readRunnerConfig').resolve(defaultOutputs().readRunnerConfig);
    await settle();
    expect(t.fake.callsOf('downloadRunner')).toHaveLength(1);
  });
});
