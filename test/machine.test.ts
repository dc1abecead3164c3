/**
 * Scenario tests of the agent machine: fake actors, a SimulatedClock, and the
 * outcome each scenario must end with (status, telemetry, exit code).
 */
import { describe, expect, it } from '@jest/globals';
import { createActor, SimulatedClock } from 'xstate';
import { agentMachine, IDENTITY_DEADLINE_MS, KILL_WAIT_MS, REGISTER_DEADLINE_MS, RETRY_POLICY, retryBackoffMs, TELEMETRY_ATTEMPT_TIMEOUT_MS } from '../machines/agent.machine.js';
import { agentOutcome, type TelemetryMessage } from '../machines/outcome.js';
import type { AgentContext } from '../machines/types.js';
import { prepareTelemetry } from '../services/aws/telemetry.js';
import { FakeActors, settle } from './support/fake-actors.js';

function start(env: Record<string, string> = {}, configure: (fake: FakeActors) => void = () => {}) {
  const fake = FakeActors.autoAll();
  configure(fake);
  const clock = new SimulatedClock();
  clock.set(Date.parse('2026-11-28T10:00:00Z'));
  const actor = createActor(agentMachine.provide({ actors: fake.actors() }), {
    clock,
    input: { env, now: () => clock.now() },
    logger: () => {},
  });
  actor.start();
  const messages = () => fake.callsOf('sendTelemetry').map((i) => i.message as TelemetryMessage);
  const finalMessage = () => messages().filter((m) => m.status !== 'started');
  const outcome = () => agentOutcome(actor.getSnapshot().context as AgentContext);
  const done = () => actor.getSnapshot().matches('finished');
  return { fake, clock, actor, messages, finalMessage, outcome, done };
}

async function runJob(t: ReturnType<typeof start>, result: string) {
  await settle();
  t.fake.runner.emit({ type: 'RUNNER_SPAWNED', pid: 4321 });
  t.fake.runner.emit({ type: 'RUNNER_LISTENING' });
  t.fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(t.clock.now()).toISOString() });
  await settle();
  t.clock.increment(30_000);
  t.fake.runner.emit({ type: 'JOB_COMPLETED', jobName: 'build', result });
  t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
  await settle();
}

describe('agent machine scenarios', () => {
  it('a job that succeeds: started, then success; terminated once; exit 0', async () => {
    const t = start();
    await runJob(t, 'Succeeded');
    expect(t.done()).toBe(true);
    expect(t.messages().map((m) => m.status)).toEqual(['started', 'success']);
    expect(t.finalMessage()[0]).toMatchObject({ instance_id: 'i-0fake0000000000001', job_id: '4242', run_id: '42', exit_code: 0, error: null });
    expect(t.finalMessage()[0]!.duration_seconds).toBe(30);
    expect(Object.keys(t.finalMessage()[0]!.timings)).toEqual(['booting', 'downloading', 'registering', 'running', 'draining', 'reporting', 'prefetch']);
    expect(t.finalMessage()[0]).toMatchObject({ job_result: 'Succeeded', tool_cache_misses: ['node/22.1.0/x64'], log_upload: 'disabled' });
    expect(t.fake.callsOf('terminateInstance')).toEqual([{ instanceId: 'i-0fake0000000000001', region: 'us-east-1' }]);
    expect(t.outcome()).toMatchObject({ status: 'success', exitCode: 0, terminationRequested: true });
  });

  it('a failed workflow is a served job: success, with the workflow result in job_result', async () => {
    const failed = start();
    await runJob(failed, 'Failed');
    expect(failed.finalMessage()[0]).toMatchObject({ status: 'success', job_result: 'Failed', error: null });
    const issues = start();
    await runJob(issues, 'SucceededWithIssues');
    expect(issues.finalMessage()[0]).toMatchObject({ status: 'success', job_result: 'SucceededWithIssues' });
  });

  it('a runner that dies mid-job is our failure', async () => {
    const t = start();
    await settle();
    t.fake.runner.emit({ type: 'RUNNER_SPAWNED', pid: 4321 });
    t.fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(t.clock.now()).toISOString() });
    await settle();
    t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: null, signal: 'SIGKILL' });
    await settle();
    expect(t.finalMessage()[0]).toMatchObject({ status: 'failure', exit_code: 137 });
    expect(t.finalMessage()[0]!.error).toContain('signal SIGKILL');
    expect(t.finalMessage()[0]!.job_result).toBeUndefined();
  });

  it('started goes out when run.sh is spawned, before any job line, with the bootstrap segments', async () => {
    const t = start();
    await settle();
    t.clock.increment(1_500);
    expect(t.messages()).toEqual([]);
    t.fake.runner.emit({ type: 'RUNNER_SPAWNED', pid: 4321 });
    await settle();
    const started = t.messages();
    expect(started.map((m) => m.status)).toEqual(['started']);
    expect(started[0]).toMatchObject({ started_at: new Date(t.clock.now()).toISOString(), completed_at: null, exit_code: null, duration_seconds: 0 });
    // config found at agent start here; the runner was spawned 1.5 s later
    expect(started[0]!.bootstrap_total_seconds).toBe(1.5);
    for (const value of Object.values(started[0]!.timings)) expect(value).toBeGreaterThanOrEqual(0);
    expect(Number.isInteger(started[0]!.duration_seconds)).toBe(true);
  });

  it('a wall clock that steps back 10 s mid-job still gives a valid final message, every duration at 0 or more', async () => {
    const fake = FakeActors.autoAll();
    const clock = new SimulatedClock();
    clock.set(Date.parse('2026-11-28T10:00:00Z'));
    let step = 0; // the wall clock the agent reads; the timers run on the simulated clock
    const actor = createActor(agentMachine.provide({ actors: fake.actors() }), { clock, input: { env: {}, now: () => clock.now() + step }, logger: () => {} });
    actor.start();
    await settle();
    fake.runner.emit({ type: 'RUNNER_SPAWNED', pid: 4321 });
    fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(clock.now()).toISOString() });
    await settle();
    step = -10_000; // NTP stepped the clock back
    fake.runner.emit({ type: 'JOB_COMPLETED', jobName: 'build', result: 'Succeeded' });
    fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
    await settle();
    const final = fake.callsOf('sendTelemetry').map((i) => i.message as TelemetryMessage).filter((m) => m.status !== 'started')[0]!;
    expect(final.status).toBe('success');
    expect(final.duration_seconds).toBe(0);
    for (const value of Object.values(final.timings)) expect(value).toBeGreaterThanOrEqual(0);
    expect(prepareTelemetry(final).ok).toBe(true);
  });

  it('SIGTERM mid-job: the runner is told to stop, and the stop reason wins over its Canceled', async () => {
    const t = start({ RUNS_FLEET_DRAIN_GRACE_SECONDS: '7' }, (f) => (f.runner.exitOnStop = false));
    await settle();
    t.fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(t.clock.now()).toISOString() });
    await settle();
    t.fake.watchers.processWatcher!.sendBack!({ type: 'SIGTERM', signal: 'SIGTERM' });
    await settle();
    expect(t.actor.getSnapshot().value).toEqual({ withRunner: { draining: 'signalling' } });
    // With the reason for the job's own log (its completed hook prints it as an ::error).
    const stop = { type: 'STOP', notice: 'the instance was told to stop at 10:00:00Z (agent received SIGTERM): the job was cancelled by the infrastructure, not by a step' };
    expect(t.fake.runner.stops).toEqual([stop]);
    t.clock.increment(6_999);
    await settle();
    expect(t.fake.runner.stops).toEqual([stop]); // the grace is the chart's: no KILL before it is over
    t.fake.runner.emit({ type: 'JOB_COMPLETED', jobName: 'build', result: 'Canceled' });
    t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
    await settle();
    expect(t.finalMessage()[0]).toMatchObject({ status: 'interrupted', interrupted_by: 'sigterm' });
    expect(t.done()).toBe(true);
  });

  it('a runner that ignores SIGTERM: drainGrace, then KILL; killWait, then it is abandoned and reporting goes on', async () => {
    const t = start({ RUNS_FLEET_DRAIN_GRACE_SECONDS: '7' }, (f) => (f.runner.exitOnStop = false));
    await settle();
    t.fake.watchers.processWatcher!.sendBack!({ type: 'SIGTERM', signal: 'SIGTERM' });
    await settle();
    t.clock.increment(7_000);
    await settle();
    expect(t.actor.getSnapshot().value).toEqual({ withRunner: { draining: 'killing' } });
    expect(t.fake.runner.stops).toEqual([{ type: 'STOP' }, { type: 'KILL' }]);
    t.clock.increment(KILL_WAIT_MS);
    await settle();
    expect(t.fake.journal).toContain('stop:runner'); // leaving withRunner stopped the actor: everything killed
    expect(t.fake.journal.indexOf('stop:runner')).toBeLessThan(t.fake.journal.lastIndexOf('call:sendTelemetry'));
    expect(t.done()).toBe(true);
    expect(t.finalMessage()[0]).toMatchObject({ status: 'interrupted', interrupted_by: 'sigterm' });
  });

  it('max runtime counts from agent start, even when an actor never settles', async () => {
    const t = start({ RUNS_FLEET_MAX_RUNTIME_MINUTES: '0.5', RUNS_FLEET_PREFETCH_RUNNER: 'false' }, (f) => (f.auto.downloadRunner = 'hang'));
    await settle();
    expect(t.actor.getSnapshot().value).toEqual({ downloading: 'attempt' });
    t.clock.increment(29_999);
    await settle();
    expect(t.actor.getSnapshot().value).toEqual({ downloading: 'attempt' });
    t.clock.increment(1);
    await settle();
    expect(t.done()).toBe(true);
    expect(t.finalMessage()[0]).toMatchObject({ status: 'timeout', error: 'max runtime of 0.5 minutes reached' });
    expect(t.fake.journal).toContain('abort:downloadRunner');
  });

  it('idle timeout: no job in time is bootstrap_failed, and the runner is stopped', async () => {
    const t = start({ RUNS_FLEET_IDLE_TIMEOUT_MINUTES: '2' });
    await settle();
    t.fake.runner.emit({ type: 'RUNNER_LISTENING' });
    t.clock.increment(120_000);
    await settle();
    expect(t.fake.runner.stops).toHaveLength(1);
    expect(t.finalMessage()[0]).toMatchObject({ status: 'bootstrap_failed', error: 'no job started within the idle timeout of 2 minutes' });
    expect(t.messages().some((m) => m.status === 'started')).toBe(false);
  });

  it('a spot notice caps the drain grace so that reporting happens before AWS acts', async () => {
    const t = start({ RUNS_FLEET_DRAIN_GRACE_SECONDS: '90' }, (f) => (f.runner.exitOnStop = false));
    await settle();
    t.fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(t.clock.now()).toISOString() });
    await settle();
    t.fake.watchers.spotWatcher!.sendBack!({ type: 'SPOT_INTERRUPTION', action: 'terminate', time: new Date(t.clock.now() + 60_000).toISOString() });
    await settle();
    const stop = { type: 'STOP', notice: 'spot interruption notice at 10:00:00Z: the instance is being reclaimed (AWS acts at 2026-11-28T10:01:00.000Z)' };
    expect(t.fake.runner.stops).toEqual([stop]);
    t.clock.increment(29_999);
    await settle();
    expect(t.fake.runner.stops).toEqual([stop]);
    t.clock.increment(1); // 60 s to the notice's time − 30 s for reporting: KILL at 30 s, not at 90 s
    await settle();
    expect(t.fake.runner.stops).toEqual([stop, { type: 'KILL' }]);
    t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: null, signal: 'SIGKILL' });
    await settle();
    expect(t.finalMessage()[0]).toMatchObject({ status: 'interrupted', interrupted_by: 'spot' });
  });

  it('disk full mid-job is a failure interrupted by disk_full', async () => {
    const t = start();
    await settle();
    t.fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(t.clock.now()).toISOString() });
    await settle();
    t.fake.watchers.resourceMonitor!.sendBack!({ type: 'DISK_FULL', freeMb: 12, minFreeMb: 500 });
    await settle();
    expect(t.finalMessage()[0]).toMatchObject({ status: 'failure', interrupted_by: 'disk_full' });
    expect(t.finalMessage()[0]!.error).toContain('12 MB free');
  });

  it('memory low is counted and reported, never a stop; told in the job log once the job runs', async () => {
    const t = start();
    await settle();
    t.fake.watchers.resourceMonitor!.sendBack!({ type: 'MEMORY_LOW', availableMb: 90, minAvailableMb: 200 });
    await settle();
    expect(t.fake.runner.notes).toEqual([]); // no job yet
    await runJob(t, 'Succeeded');
    expect(t.finalMessage()[0]).toMatchObject({ status: 'success', memory_warnings: 1 });
    expect(t.fake.runner.notes).toEqual(['low memory at 10:00:00Z: 90 MB available, below the 200 MB minimum (RUNS_FLEET_MEM_MIN_AVAILABLE_MB)']);
    expect(t.fake.runner.stops).toEqual([]);
  });

  it('memory low during the job: a NOTE for the job log at once', async () => {
    const t = start();
    await settle();
    t.fake.runner.emit({ type: 'RUNNER_SPAWNED', pid: 4321 });
    t.fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(t.clock.now()).toISOString() });
    await settle();
    t.clock.increment(5_000);
    t.fake.watchers.resourceMonitor!.sendBack!({ type: 'MEMORY_LOW', availableMb: 150, minAvailableMb: 200 });
    await settle();
    expect(t.fake.runner.notes).toEqual(['low memory at 10:00:05Z: 150 MB available, below the 200 MB minimum (RUNS_FLEET_MEM_MIN_AVAILABLE_MB)']);
    expect(t.actor.getSnapshot().matches({ withRunner: 'running' })).toBe(true);
  });

  describe('the runner as it really behaves (actions/runner v2.336.0)', () => {
    const waiting = async (t: ReturnType<typeof start>) => {
      await settle();
      t.fake.runner.emit({ type: 'RUNNER_SPAWNED', pid: 4321 });
      t.fake.runner.emit({ type: 'RUNNER_LISTENING' });
      await settle();
    };

    it('a line after which no job comes, while waiting: drained at once, bootstrap_failed with the line', async () => {
      const t = start({}, (f) => (f.runner.exitOnStop = false));
      await waiting(t);
      t.fake.runner.emit({ type: 'RUNNER_FATAL', reason: 'session-exists', line: 'A session for this runner already exists.' });
      await settle();
      expect(t.actor.getSnapshot().value).toEqual({ withRunner: { draining: 'signalling' } });
      expect(t.fake.runner.stops).toEqual([{ type: 'STOP' }]); // no job ran: no notice for a job log
      t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
      await settle();
      expect(t.finalMessage()[0]).toMatchObject({ status: 'bootstrap_failed', error: 'the runner will never get its job: "A session for this runner already exists."' });
      expect(t.done()).toBe(true);
    });

    it('a deprecation line names the version and what to update', async () => {
      const t = start();
      await waiting(t);
      t.fake.runner.emit({ type: 'RUNNER_FATAL', reason: 'deprecated', line: 'An error occurred: Runner version v2.330.0 is deprecated and cannot receive messages.' });
      await settle();
      expect(t.finalMessage()[0]!.status).toBe('bootstrap_failed');
      expect(t.finalMessage()[0]!.error).toBe(
        'runner 2.330.0 is deprecated: GitHub refuses it ("An error occurred: Runner version v2.330.0 is deprecated and cannot receive messages."). Update the runner baked into the AMI, or RUNS_FLEET_RUNNER_VERSION if it is pinned',
      );
    });

    it('run.sh exit code 7 alone (no line seen) is the same deprecation error', async () => {
      const t = start();
      await waiting(t);
      t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 7, signal: null });
      await settle();
      expect(t.finalMessage()[0]).toMatchObject({ status: 'bootstrap_failed', exit_code: 7 });
      expect(t.finalMessage()[0]!.error).toBe('runner 2.330.0 is deprecated: GitHub refuses it (run.sh exit code 7). Update the runner baked into the AMI, or RUNS_FLEET_RUNNER_VERSION if it is pinned');
    });

    it('an error line while the job runs is only logged: the job goes on', async () => {
      const t = start();
      await waiting(t);
      t.fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(t.clock.now()).toISOString() });
      await settle();
      t.fake.runner.emit({ type: 'RUNNER_FATAL', reason: 'error', line: 'An error occured: something transient' });
      await settle();
      expect(t.actor.getSnapshot().matches({ withRunner: 'running' })).toBe(true);
      expect(t.fake.runner.stops).toEqual([]);
    });

    /** The job ran and printed its result; run.sh stays: nothing is stopped until `graceMs` has passed. */
    const resultThenHang = async (env: Record<string, string>, result: string, graceMs: number) => {
      const t = start(env, (f) => (f.runner.exitOnStop = false));
      await waiting(t);
      t.fake.runner.emit({ type: 'JOB_STARTED', jobName: 'build', at: new Date(t.clock.now()).toISOString() });
      t.fake.runner.emit({ type: 'JOB_COMPLETED', jobName: 'build', result });
      await settle();
      t.clock.increment(graceMs - 1);
      await settle();
      expect(t.fake.runner.stops).toEqual([]);
      t.clock.increment(1);
      await settle();
      return t;
    };

    it('run.sh not gone within RUNS_FLEET_RESULT_EXIT_GRACE_SECONDS of the result line: drained, still a success', async () => {
      const t = await resultThenHang({ RUNS_FLEET_RESULT_EXIT_GRACE_SECONDS: '40' }, 'Succeeded', 40_000);
      expect(t.actor.getSnapshot().value).toEqual({ withRunner: { draining: 'signalling' } });
      expect(t.fake.runner.stops).toEqual([{ type: 'STOP' }]); // the job ended by itself: nothing to tell its log
      t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
      await settle();
      expect(t.finalMessage()[0]).toMatchObject({ status: 'success', job_result: 'Succeeded', error: null });
    });

    it('the result grace defaults to 45 s, above the listener and worker waits of 30 s', async () => {
      const t = await resultThenHang({}, 'Failed', 45_000);
      expect(t.fake.runner.stops).toEqual([{ type: 'STOP' }]);
    });
  });

  it('a non-numeric timeout ends the boot as bootstrap_failed naming the variable, and still terminates', async () => {
    const t = start({ RUNS_FLEET_MAX_RUNTIME_MINUTES: 'forever' });
    await settle();
    expect(t.done()).toBe(true);
    expect(t.fake.callsOf('downloadRunner')).toHaveLength(0);
    expect(t.finalMessage()[0]!.status).toBe('bootstrap_failed');
    expect(t.finalMessage()[0]!.error).toContain('RUNS_FLEET_MAX_RUNTIME_MINUTES="forever"');
    expect(t.fake.callsOf('terminateInstance')).toHaveLength(1);
  });

  it('retries a transient download failure with backoff, fails at once on a terminal one', async () => {
    const transient = Object.assign(new Error('HTTP 502'), { retriable: true });
    const t = start({ RUNS_FLEET_PREFETCH_RUNNER: 'false' }, (f) => (f.auto.downloadRunner = undefined));
    await settle();
    t.fake.take('downloadRunner').reject(transient);
    await settle();
    expect(t.actor.getSnapshot().value).toEqual({ downloading: 'backoff' });
    t.clock.increment(8_000);
    await settle();
    t.fake.take('downloadRunner').reject(transient);
    await settle();
    t.clock.increment(8_000);
    await settle();
    t.fake.take('downloadRunner').reject(transient);
    await settle();
    expect(t.fake.callsOf('downloadRunner').map((i) => i.attempt)).toEqual([1, 2, 3]);
    expect(t.finalMessage()[0]).toMatchObject({ status: 'bootstrap_failed', error: 'HTTP 502' });

    const u = start({ RUNS_FLEET_PREFETCH_RUNNER: 'false' }, (f) => (f.auto.downloadRunner = { reject: Object.assign(new Error('checksum mismatch: expected a, got b'), { retriable: false }) }));
    await settle();
    expect(u.fake.callsOf('downloadRunner')).toHaveLength(1);
    expect(u.finalMessage()[0]!.error).toContain('checksum mismatch');
  });

  it('a rate-limited download waits as long as GitHub asked (Retry-After), capped', async () => {
    const t = start({ RUNS_FLEET_PREFETCH_RUNNER: 'false' }, (f) => (f.auto.downloadRunner = undefined));
    await settle();
    t.fake.take('downloadRunner').reject(Object.assign(new Error('HTTP 429'), { retriable: true, retryAfterMs: 20_000 }));
    await settle();
    t.clock.increment(19_999);
    await settle();
    expect(t.actor.getSnapshot().value).toEqual({ downloading: 'backoff' });
    t.clock.increment(1);
    await settle();
    expect(t.fake.callsOf('downloadRunner')).toHaveLength(2);
  });

  it('the S3 cache upload is a child with a bounded lifetime: started with registering, abandoned at cleanup if not done', async () => {
    const archive = { file: '/opt/.cache-upload-x.tar.gz', version: '2.330.0', arch: 'x64' as const, sha256: 'a'.repeat(64), bytes: 1 };
    const withArchive = (f: FakeActors) => (f.auto.downloadRunner = { resolve: { dir: '/opt/actions-runner', version: '2.330.0', source: 'github', cacheArchive: archive } });
    const slow = start({ RUNS_FLEET_PREFETCH_RUNNER: 'false' }, withArchive);
    await runJob(slow, 'Succeeded');
    expect(slow.fake.journal.indexOf('start:uploadRunnerCache')).toBeLessThan(slow.fake.journal.indexOf('call:registerRunner'));
    expect(slow.fake.journal.indexOf('stop:uploadRunnerCache')).toBeGreaterThan(slow.fake.journal.lastIndexOf('call:sendTelemetry'));
    expect(slow.fake.journal.indexOf('stop:uploadRunnerCache')).toBeLessThan(slow.fake.journal.indexOf('call:cleanup'));
    expect((slow.actor.getSnapshot().context as AgentContext).cacheUpload).toBe('abandoned');
    expect(slow.done()).toBe(true);

    const quick = start({ RUNS_FLEET_PREFETCH_RUNNER: 'false' }, withArchive);
    await settle();
    quick.fake.watchers.uploadRunnerCache!.sendBack!({ type: 'CACHE_UPLOAD_FINISHED', outcome: 'uploaded' });
    await runJob(quick, 'Succeeded');
    expect((quick.actor.getSnapshot().context as AgentContext).cacheUpload).toBe('uploaded');

    const none = start();
    await runJob(none, 'Succeeded');
    expect(none.fake.journal).not.toContain('start:uploadRunnerCache');
  });

  it('registering and booting have deadlines: a stuck config.sh or IMDS is a bootstrap failure, reported', async () => {
    const stuck = start({}, (f) => (f.auto.registerRunner = 'hang'));
    await settle();
    expect(stuck.actor.getSnapshot().value).toEqual({ registering: 'registeringRunner' });
    stuck.clock.increment(REGISTER_DEADLINE_MS);
    await settle();
    expect(stuck.fake.journal).toContain('abort:registerRunner'); // leaving the state cancels config.sh
    expect(stuck.finalMessage()[0]).toMatchObject({ status: 'bootstrap_failed', error: 'config.sh did not finish within 300 s' });
    expect(stuck.done()).toBe(true);

    const noImds = start({}, (f) => (f.auto.resolveIdentity = 'hang'));
    await settle();
    noImds.clock.increment(IDENTITY_DEADLINE_MS);
    await settle();
    expect(noImds.done()).toBe(true);
    expect(noImds.outcome()).toMatchObject({ status: 'bootstrap_failed', error: 'learning the instance id and region did not finish within 60 s', exitCode: 1 });
  });

  it('without an instance id nothing is terminated and the exit code is 1', async () => {
    const t = start({}, (f) => (f.auto.resolveIdentity = { reject: new Error('could not learn the instance id from IMDS') }));
    await settle();
    expect(t.done()).toBe(true);
    expect(t.fake.callsOf('terminateInstance')).toHaveLength(0);
    expect(t.outcome()).toMatchObject({ exitCode: 1, status: 'bootstrap_failed', terminationRequested: false });
  });

  it('a queue that never answers cannot hold the instance: the report deadline moves on', async () => {
    const t = start({ RUNS_FLEET_REPORT_TIMEOUT_SECONDS: '4' }, (f) => (f.auto.sendTelemetry = 'hang'));
    await runJob(t, 'Succeeded');
    expect(t.actor.getSnapshot().value).toEqual({ reporting: { sending: 'attempt' } });
    t.clock.increment(4_000);
    await settle();
    expect(t.done()).toBe(true);
    expect(t.fake.callsOf('terminateInstance')).toHaveLength(1);
  });

  it('the final report is retried in the chart: a retriable failure backs off and tries again, a lasting one gives up', async () => {
    const retriable = () => Object.assign(new Error('SQS answered 503'), { retriable: true });
    const t = start({}, (f) => (f.auto.sendTelemetry = undefined));
    await settle();
    t.fake.runner.emit({ type: 'RUNNER_SPAWNED', pid: 4321 });
    await settle();
    t.fake.take('sendTelemetry').resolve({ sent: true }); // started
    t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
    await settle();
    for (let attempt = 1; attempt < RETRY_POLICY.finalTelemetry.attempts; attempt++) {
      t.fake.take('sendTelemetry').reject(retriable());
      await settle();
      expect(t.actor.getSnapshot().value).toEqual({ reporting: { sending: 'backoff' } });
      expect((t.actor.getSnapshot().context as AgentContext).retries.finalTelemetry).toBe(attempt + 1);
      t.clock.increment(RETRY_POLICY.finalTelemetry.maxMs);
      await settle();
    }
    // The last attempt fails too: no more, on to termination.
    t.fake.take('sendTelemetry').reject(retriable());
    await settle();
    expect(t.done()).toBe(true);
    expect(t.finalMessage()).toHaveLength(RETRY_POLICY.finalTelemetry.attempts);
    expect((t.actor.getSnapshot().context as AgentContext).telemetry.finalSent).toBe(false);
    expect((t.actor.getSnapshot().context as AgentContext).retries).toEqual({}); // only while the loop runs

    const lasting = start({}, (f) => (f.auto.sendTelemetry = { reject: Object.assign(new Error('queue does not exist'), { retriable: false }) }));
    await runJob(lasting, 'Succeeded');
    expect(lasting.done()).toBe(true);
    expect(lasting.finalMessage()).toHaveLength(1);
  });

  it('RUNS_FLEET_REPORT_TIMEOUT_SECONDS is the whole deadline: attempts go on past 30 s when it allows', async () => {
    const t = start({ RUNS_FLEET_REPORT_TIMEOUT_SECONDS: '90' }, (f) => (f.auto.sendTelemetry = undefined));
    await settle();
    t.fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
    await settle();
    const startedAt = t.clock.now();
    for (let attempt = 1; attempt < RETRY_POLICY.finalTelemetry.attempts; attempt++) {
      t.clock.increment(TELEMETRY_ATTEMPT_TIMEOUT_MS); // each attempt times out (the service's own timeout)
      t.fake.take('sendTelemetry').reject(Object.assign(new Error(`SendMessage did not answer within ${TELEMETRY_ATTEMPT_TIMEOUT_MS} ms`), { retriable: true }));
      await settle();
      t.clock.increment(RETRY_POLICY.finalTelemetry.maxMs);
      await settle();
    }
    expect(t.clock.now() - startedAt).toBeGreaterThan(30_000);
    expect(t.actor.getSnapshot().value).toEqual({ reporting: { sending: 'attempt' } });
    t.fake.take('sendTelemetry').resolve({ sent: true });
    await settle();
    expect((t.actor.getSnapshot().context as AgentContext).telemetry.finalSent).toBe(true);
    expect(t.fake.callsOf('sendTelemetry').every((input) => input.timeoutMs === TELEMETRY_ATTEMPT_TIMEOUT_MS)).toBe(true);
  });

  it('TerminateInstances is retried in the chart, at most 3 attempts, then exit 1', async () => {
    const t = start({}, (f) => (f.auto.terminateInstance = { reject: Object.assign(new Error('EC2 answered 503'), { retriable: true }) }));
    await runJob(t, 'Succeeded');
    for (let i = 0; i < RETRY_POLICY.terminate.attempts; i++) {
      t.clock.increment(RETRY_POLICY.terminate.maxMs);
      await settle();
    }
    expect(t.done()).toBe(true);
    expect(t.fake.callsOf('terminateInstance')).toHaveLength(RETRY_POLICY.terminate.attempts);
    expect(t.outcome()).toMatchObject({ exitCode: 1, terminationRequested: false, terminationError: 'EC2 answered 503' });
  });

  it('retry backoffs are capped and jittered', () => {
    expect(retryBackoffMs('finalTelemetry', 1, () => 0)).toBe(500);
    expect(retryBackoffMs('finalTelemetry', 1, () => 1)).toBe(1_000);
    expect(retryBackoffMs('finalTelemetry', 3, () => 1)).toBe(4_000);
    expect(retryBackoffMs('finalTelemetry', 9, () => 1)).toBe(8_000);
    expect(retryBackoffMs('terminate', 9, () => 1)).toBe(4_000);
  });

  it('the job log is flushed before the final message, which counts shipped and dropped lines', async () => {
    const t = start({}, (f) => (f.auto.flushLogs = { resolve: { shipped: 1200, dropped: 7 } }));
    await runJob(t, 'Succeeded');
    const journal = t.fake.journal;
    expect(journal.indexOf('call:flushLogs')).toBeLessThan(journal.lastIndexOf('call:sendTelemetry'));
    expect(t.finalMessage()[0]).toMatchObject({ log_lines_shipped: 1200, log_lines_dropped: 7 });
  });

  it('a crash while flushing still reports; a crash while sending goes straight to termination', async () => {
    const flushing = start({}, (f) => (f.auto.flushLogs = 'hang'));
    await runJob(flushing, 'Succeeded');
    flushing.fake.watchers.processWatcher!.sendBack!({ type: 'PANIC', error: 'boom' });
    await settle();
    expect(flushing.finalMessage()).toHaveLength(1);
    flushing.clock.increment(4_000); // the last flush hangs too: its short deadline (3 s + 1 s backstop) moves on
    await settle();
    expect(flushing.done()).toBe(true);

    const sending = start({}, (f) => (f.auto.sendTelemetry = 'hang'));
    await runJob(sending, 'Succeeded');
    sending.fake.watchers.processWatcher!.sendBack!({ type: 'PANIC', error: 'boom again' });
    await settle();
    expect(sending.done()).toBe(true);
    expect(sending.fake.callsOf('terminateInstance')).toHaveLength(1);
  });

  it('TerminateInstances failing ends with exit code 1 (systemd then powers off)', async () => {
    const t = start({}, (f) => (f.auto.terminateInstance = { reject: new Error('UnauthorizedOperation') }));
    await runJob(t, 'Succeeded');
    expect(t.outcome()).toMatchObject({ exitCode: 1, terminationError: 'UnauthorizedOperation' });
  });
});
