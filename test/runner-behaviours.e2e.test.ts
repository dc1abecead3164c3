/**
 * The runner as it really behaves (actions/runner v2.336.0, runner-and-aws-facts.md "details
 * that are easy to get wrong"), end to end on the built agent with moto and the fakes:
 * - lines after which the job will never come end the wait fast, as bootstrap_failed with the line;
 * - a listener that hangs after the job's result is drained within its grace;
 * - `.setup_info` as the runner reads it ("Set up job");
 * - the reason of a stop, and a memory warning, as annotations of the job's own log.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jobHookPaths } from '../services/runner/job-hooks.js';
import { createWorld, JIT_SECRET, RUNNER_VERSION, type World } from './support/agent-world.js';
import type { FakeRunnerOptions } from './support/fake-runner.js';
import { e2eFile } from './support/e2e-file.js';

let world: World | undefined;
const e2e = e2eFile(() => world, () => (world = undefined));

const AGENT_VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const logTime = (logs: Record<string, unknown>[], predicate: (l: Record<string, unknown>) => boolean) => {
  const line = logs.find(predicate);
  return line ? Date.parse(String(line.time)) : undefined; // pino's isoTime
};

describe('lines that mean the job will never come: fast, bootstrap_failed, the line as the error', () => {
  // The world's idle timeout is a minute: ending within 10 s is the line's doing, not the idle timer's.
  const cases: [string, Partial<FakeRunnerOptions>, RegExp][] = [
    ['a refused version (its line on stderr first; run.sh then exits 7, ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1)', { behavior: 'deprecated' }, /runner 2\.330\.0 is deprecated: GitHub refuses it.*Update the runner baked into the AMI, or RUNS_FLEET_RUNNER_VERSION/],
    ['a refused version on a runner older than v2.333.0 (its message, run.sh exit 0)', { behavior: 'deprecated', deprecatedExitCode: false }, /runner 2\.330\.0 is deprecated: GitHub refuses it \("An error occurred: Runner version v2\.330\.0 is deprecated/],
    ['a session conflict on stderr (the listener would retry for minutes)', { behavior: 'session-exists' }, /the runner will never get its job: "A session for this runner already exists\."/],
    ['the registration gone, exit 0 without a job', { behavior: 'runner-gone' }, /the runner will never get its job: "The runner no longer exists on the server\. Cleaning up local configuration\."/],
  ];

  it.each(cases)('%s', async (_name, runner, error) => {
    world = await createWorld({ moto: e2e.moto, runner });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const run = await world.runAgent();
    expect(run.exitCode).toBe(0);
    const final = (await world.telemetry()).at(-1)!;
    expect(final.status).toBe('bootstrap_failed');
    expect(final.error).toMatch(error);
    expect(final.error).not.toContain(JIT_SECRET);
    const spawned = logTime(run.logs, (l) => l.msg === 'run.sh started')!;
    const reporting = logTime(run.logs, (l) => l.msg === 'state' && l.state === 'reporting')!;
    process.stdout.write(`${_name}: run.sh started → reporting ${reporting - spawned} ms; agent run ${run.durationMs} ms\n`);
    expect(run.durationMs).toBeLessThan(10_000);
    expect(await world.instanceState()).toBe('terminated');
    expect(world.runnerProcesses()).toEqual([]);
  });
});

it('a listener that hangs after the job result is drained within RUNS_FLEET_RESULT_EXIT_GRACE_SECONDS: success', async () => {
  world = await createWorld({ moto: e2e.moto, runner: { behavior: 'hang-after-result' } });
  await world.putRunnerConfig({ jit_config: JIT_SECRET });
  const run = await world.runAgent({ RUNS_FLEET_RESULT_EXIT_GRACE_SECONDS: '2' });
  expect(run.exitCode).toBe(0);
  const final = (await world.telemetry()).at(-1)!;
  expect(final).toMatchObject({ status: 'success', job_result: 'Succeeded', error: null, interrupted_by: null });
  const result = logTime(run.logs, (l) => l.msg === 'job completed')!;
  const draining = logTime(run.logs, (l) => l.msg === 'state' && l.state === 'draining')!;
  process.stdout.write(`hung listener: result line → draining ${draining - result} ms (grace 2000 ms)\n`);
  expect(draining - result).toBeGreaterThanOrEqual(1_900);
  expect(draining - result).toBeLessThan(5_000);
  expect(run.logs.some((l) => typeof l.msg === 'string' && l.msg.includes("run.sh did not exit within 2 s of the job's result"))).toBe(true);
  expect(world.runnerProcesses()).toEqual([]);
});

it("the JIT config is in no process's environment the job can read (registering decoded it into the runner root)", async () => {
  const marker = JIT_SECRET.slice(8, 48);
  // As the job: every /proc/PID/environ it can read, searched for the JIT config; the runner's
  // own variables found there show that the scan reads what a job can.
  const jobScript = [
    'readable=0 jit=0 runner=0',
    'for f in /proc/[0-9]*/environ; do',
    '  [ -r "$f" ] || continue; tr "\\0" "\\n" < "$f" > /tmp/rfa-env.$$ 2>/dev/null || continue',
    '  readable=$((readable+1))',
    `  grep -qF '${marker}' /tmp/rfa-env.$$ && jit=$((jit+1))`,
    '  grep -qx RUNNER_MANUALLY_TRAP_SIG=1 /tmp/rfa-env.$$ && runner=$((runner+1))',
    'done; rm -f /tmp/rfa-env.$$',
    'echo "$readable $jit $runner" > .fake-environ-scan',
    '[ -r .credentials ] && echo readable > .fake-credentials-scan',
  ].join('\n');
  world = await createWorld({ moto: e2e.moto, runner: { behavior: 'succeed', jobScript } });
  await world.putRunnerConfig({ jit_config: JIT_SECRET });
  const run = await world.runAgent();
  expect(run.exitCode).toBe(0);
  const [readable, jit, runner] = readFileSync(join(world.runnerDir, '.fake-environ-scan'), 'utf8').trim().split(' ').map(Number);
  expect(readable).toBeGreaterThan(2);
  expect(runner).toBeGreaterThanOrEqual(2); // run.sh and the listener: readable by the job's uid
  expect(jit).toBe(0);
  // What remains (docs/operations.md "What a job can see and do"): the runner's own credentials files.
  expect(readFileSync(join(world.runnerDir, '.fake-credentials-scan'), 'utf8').trim()).toBe('readable');
  expect(existsSync(join(world.runnerDir, '.credentials'))).toBe(false); // removed at cleanup
});

describe("the job's own log", () => {
  it('.setup_info, read by the runner user at job start: the instance from IMDS, versions, the source, the boot; the started hook names the limits', async () => {
    world = await createWorld({ moto: e2e.moto, runner: { behavior: 'succeed' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const run = await world.runAgent();
    expect(run.exitCode).toBe(0);
    const seen = JSON.parse(readFileSync(join(world.runnerDir, '.fake-setup-info-seen.json'), 'utf8')) as { group: string; detail: string }[];
    expect(seen.map((e) => e.group)).toEqual(['runs-fleet instance', 'runs-fleet agent']);
    expect(seen[0]!.detail.split('\n')).toEqual([
      `Instance: ${world.instanceId}`,
      'Instance type: t3.medium',
      expect.stringMatching(/^Availability zone: [a-z]{2}-[a-z]+-\d[a-z]$/),
      'AMI: ami-12345678',
      'Lifecycle: spot',
    ]);
    const agent = seen[1]!.detail.split('\n');
    expect(agent.slice(0, 3)).toEqual([`Agent version: ${AGENT_VERSION}`, `Runner version: ${RUNNER_VERSION}`, 'Runner: downloaded from GitHub']);
    expect(agent.at(-1)).toMatch(/^Agent start to job ready: \d+(\.\d)? s \(booting [\d.]+ s, downloading [\d.]+ s, registering [\d.]+ s\)$/);
    const jobLog = readFileSync(join(world.runnerDir, '.fake-job-log.txt'), 'utf8');
    expect(jobLog).toContain(`runs-fleet: this job runs on instance ${world.instanceId} (t3.medium, spot, `);
    expect(jobLog).toMatch(/the agent stops it at its max runtime of 2 minutes \(\d\d:\d\d:\d\dZ\)/);
    // A normal job: the completed hook ran, and printed no annotation.
    expect(jobLog).toContain('##[group]Complete runner');
    expect(jobLog).not.toMatch(/^::/m);
    expect(jobLog.match(/hook exit code: (\d+)/g)).toEqual(['hook exit code: 0', 'hook exit code: 0']);
  });

  it('a field IMDS does not give is left out of .setup_info, never an error', async () => {
    world = await createWorld({ moto: e2e.moto, runner: { behavior: 'succeed' } });
    world.imds.setMissing(['/latest/meta-data/ami-id', '/latest/meta-data/instance-life-cycle']);
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const run = await world.runAgent();
    expect(run.exitCode).toBe(0);
    const final = (await world.telemetry()).at(-1)!;
    expect([final.status, final.error]).toEqual(['success', null]);
    const seen = JSON.parse(readFileSync(join(world.runnerDir, '.fake-setup-info-seen.json'), 'utf8')) as { group: string; detail: string }[];
    expect(seen[0]!.detail).toContain('Instance type: t3.medium');
    expect(seen[0]!.detail).not.toMatch(/AMI|Lifecycle/);
  });

  /** Runs the completed hook as the runner would, right after the agent signalled the runner (before cleanup). */
  function completedHookAtStop(w: World) {
    const hook: { output?: string; status?: number | null; onLine: (line: string) => void } = {
      onLine: (line) => {
        if (hook.output !== undefined || !line.includes('"msg":"sent SIGTERM to the runner process group"')) return;
        const run = spawnSync(jobHookPaths(w.stateDir).completed, [], { env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 5000 });
        hook.output = run.stdout;
        hook.status = run.status;
      },
    };
    return hook;
  }

  it('a spot stop: the completed hook prints one ::error naming the notice and its time (the runner itself skips the hook once signalled)', async () => {
    world = await createWorld({ moto: e2e.moto, runner: { behavior: 'hang' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const hook = completedHookAtStop(world);
    const w = world;
    const { done } = world.startAgent({}, {
      onLine: (line) => {
        if (line.includes('"msg":"job started"')) w.imds.setSpotAction({ action: 'terminate', time: new Date(Date.now() + 120_000).toISOString() });
        hook.onLine(line);
      },
    });
    const run = await done;
    expect(run.exitCode).toBe(0);
    expect((await world.telemetry()).at(-1)).toMatchObject({ status: 'interrupted', interrupted_by: 'spot' });
    expect(hook.status).toBe(0);
    const annotations = hook.output!.split('\n').filter((l) => l.startsWith('::'));
    expect(annotations).toHaveLength(1);
    expect(annotations[0]).toMatch(/^::error title=runs-fleet::spot interruption notice at \d\d:\d\d:\d\dZ: the instance is being reclaimed \(AWS acts at \d{4}-\d\d-\d\dT[\d:.]+Z\)$/);
    // What the runner does: a signalled runner skips the remaining steps, the completed hook too (StepsRunner.cs).
    const jobLog = readFileSync(join(world.runnerDir, '.fake-job-log.txt'), 'utf8');
    expect(jobLog).toContain('##[group]Set up runner');
    expect(jobLog).not.toContain('##[group]Complete runner');
  });

  it('max runtime: the completed hook prints the ::error with the limit', async () => {
    world = await createWorld({ moto: e2e.moto, runner: { behavior: 'hang' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const hook = completedHookAtStop(world);
    const { done } = world.startAgent({ RUNS_FLEET_MAX_RUNTIME_MINUTES: '0.1' }, { onLine: hook.onLine });
    const run = await done;
    expect(run.exitCode).toBe(0);
    expect((await world.telemetry()).at(-1)).toMatchObject({ status: 'timeout' });
    expect(hook.status).toBe(0);
    expect(hook.output!.split('\n').filter((l) => l.startsWith('::'))).toEqual([expect.stringMatching(/^::error title=runs-fleet::max runtime of 0\.1 minutes reached at \d\d:\d\d:\d\dZ$/)]);
  });

  it('low memory (here from the start, told once at the crossing) and a job that ends by itself: a ::warning in the job log, printed by the completed hook the runner ran', async () => {
    world = await createWorld({ moto: e2e.moto, runner: { behavior: 'succeed', jobSeconds: 2.5 } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const run = await world.runAgent({ RUNS_FLEET_MEM_MIN_AVAILABLE_MB: '10000000', RUNS_FLEET_MONITOR_INTERVAL_SECONDS: '0.5' });
    expect(run.exitCode).toBe(0);
    const final = (await world.telemetry()).at(-1)!;
    expect(final.status).toBe('success');
    expect(final.memory_warnings).toBeGreaterThan(0);
    const jobLog = readFileSync(join(world.runnerDir, '.fake-job-log.txt'), 'utf8');
    const annotations = jobLog.split('\n').filter((l) => l.startsWith('::'));
    expect(annotations.length).toBeGreaterThan(0);
    for (const a of annotations) expect(a).toMatch(/^::warning title=runs-fleet::low memory at \d\d:\d\d:\d\dZ: \d+ MB available, below the 10000000 MB minimum/);
    expect(existsSync(jobHookPaths(world.stateDir).jobNotice)).toBe(false); // cleaned up with the state dir
  });
});
