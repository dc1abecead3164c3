/**
 * End to end: the built agent (dist/runs-fleet-agent.cjs) as a process, against moto,
 * the fake GitHub, the fake IMDS and the fake runner. `make test` builds it first.
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { jobHookPaths } from '../services/runner/job-hooks.js';
import { AGENT_BINARY, createWorld, JIT_SECRET, JOB_ID, RUN_ID, TEST_RUNNER_USER, TOKEN_SECRET, type World } from './support/agent-world.js';
import { e2eFile } from './support/e2e-file.js';

let world: World;
// Every message of every test here must be one the orchestrator's decoder takes, with its meaning.
const e2e = e2eFile(() => world);

const states = (logs: Record<string, unknown>[]) => logs.filter((l) => l.msg === 'state').map((l) => l.state);

/** The same tests for both artifacts: the bundle under node, and the single executable. */
const VARIANTS: [string, string[] | undefined][] = process.env.RFA_AGENT_UNDER_TEST
  ? [['under test', [process.execPath, process.env.RFA_AGENT_UNDER_TEST]]] // another build, e.g. an older main's
  : [
      ['bundle', undefined],
      ['single binary', [AGENT_BINARY]],
    ];

describe.each(VARIANTS)('the built agent (%s), end to end', (_variant, agent) => {
  it('runs one JIT job: started then success, logs in CloudWatch, parameter deleted, instance terminated, exit 0', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'lines', lines: 3, jobName: 'unit-tests' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });

    const run = await world.runAgent();

    expect(run.exitCode).toBe(0);
    expect(states(run.logs)).toEqual(['booting', 'downloading', 'registering', 'running', 'draining', 'reporting', 'terminating']);
    const telemetry = await world.telemetry();
    expect(telemetry.map((m) => m.status)).toEqual(['started', 'success']);
    const final = telemetry[1]!;
    expect(final).toMatchObject({ instance_id: world.instanceId, job_id: JOB_ID, run_id: RUN_ID, error: null, interrupted_by: null });
    expect(Date.parse(final.completed_at)).toBeGreaterThanOrEqual(Date.parse(final.started_at));
    expect(Object.keys(final.timings)).toEqual(expect.arrayContaining(['booting', 'downloading', 'registering', 'running']));
    expect(await world.instanceState()).toBe('terminated');
    expect(await world.parameterExists()).toBe(false);
    const events = await world.logEvents();
    expect(events).toEqual(expect.arrayContaining(['line 1', 'line 2', 'line 3']));
    expect(events.some((l) => /Running job: unit-tests/.test(l))).toBe(true);
    // Secrets never printed, and the runner's credentials are cleaned up.
    for (const text of [run.stdout, run.stderr, JSON.stringify(telemetry), events.join('\n')]) expect(text).not.toContain(JIT_SECRET);
    expect(existsSync(join(world.runnerDir, '_work'))).toBe(false);
    expect(world.runnerProcesses()).toEqual([]);
  });

  it('registration-token mode runs config.sh with the SPEC arguments, the token never on its command line', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'succeed' } });
    await world.putRunnerConfig({ jit_token: TOKEN_SECRET, org: 'acme', repo: 'app', labels: ['self-hosted', 'x64'], runner_group: 'ci', runner_name: 'rf-1' });

    const run = await world.runAgent({ RUNS_FLEET_RUNNER_DIR: world.runnerDir });

    expect(run.exitCode).toBe(0);
    expect((await world.telemetry()).map((m) => m.status)).toEqual(['started', 'success']);
    const args = JSON.parse(readFileSync(join(world.runnerDir, '_diag', 'config-args.json'), 'utf8'));
    const argv: string[] = Array.isArray(args) ? args : args.argv;
    expect(argv).toEqual(
      expect.arrayContaining(['--unattended', '--url', `${world.github.webUrl}/acme/app`, '--name', 'rf-1', '--labels', 'self-hosted,x64', '--runnergroup', 'ci', '--work', '_work', '--ephemeral', '--disableupdate', '--replace']),
    );
    expect(argv.join(' ')).not.toContain(TOKEN_SECRET);
    expect(run.stdout + run.stderr).not.toContain(TOKEN_SECRET);
  });

  it('a failed workflow is a served job: success, job_result Failed (run.sh still exits 0)', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'fail' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const run = await world.runAgent();
    expect(run.exitCode).toBe(0);
    const final = (await world.telemetry()).at(-1)!;
    expect(final).toMatchObject({ status: 'success', job_result: 'Failed', error: null });
    expect(await world.instanceState()).toBe('terminated');
  });

  it('SIGTERM mid-job: runner signalled and gone, interrupted by sigterm, instance terminated', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'hang' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    let killAt = 0;
    let forwardedAt = 0;
    const { child, done } = world.startAgent({}, {
      onLine: (line) => {
        if (line.includes('"state":"running"')) {
          setTimeout(() => {
            killAt = Date.now();
            child.kill('SIGTERM');
          }, 1500);
        }
        if (line.includes('sent SIGTERM to the runner process group')) forwardedAt = Date.now();
      },
    });
    const run = await done;
    expect(run.exitCode).toBe(0);
    // The stop reaches the runner fast (goal 100 ms; generous bound for a loaded machine).
    const forwardMs = forwardedAt - killAt;
    process.stdout.write(`SIGTERM to the agent → SIGTERM to the runner's group: ${forwardMs} ms\n`);
    expect(forwardedAt).toBeGreaterThan(0);
    expect(forwardMs).toBeLessThan(1000);
    const telemetry = await world.telemetry();
    expect(telemetry.map((m) => m.status)).toEqual(['started', 'interrupted']);
    expect(telemetry[1]).toMatchObject({ interrupted_by: 'sigterm' });
    expect(world.runnerProcesses()).toEqual([]);
    expect(await world.instanceState()).toBe('terminated');
  });

  it('the job hooks hand the job identity to the agent: the final message carries it', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'hang' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET, run_id: undefined });
    let hook: ReturnType<typeof spawnSync> | undefined;
    const { child, done } = world.startAgent({}, {
      onLine: (line) => {
        if (!line.includes('"state":"running"')) return;
        setTimeout(() => {
          // What the runner does at job start: run ACTIONS_RUNNER_HOOK_JOB_STARTED with the job's variables.
          const env = { PATH: process.env.PATH, GITHUB_RUN_ID: '555000111', GITHUB_RUN_ATTEMPT: '2', GITHUB_JOB: 'unit', GITHUB_REPOSITORY: 'acme/app', GITHUB_WORKFLOW: 'CI' };
          hook = spawnSync(jobHookPaths(world.stateDir).started, [], { env, encoding: 'utf8', timeout: 5000 });
          child.kill('SIGTERM');
        }, 800);
      },
    });
    const run = await done;
    expect(hook?.status).toBe(0);
    expect(run.exitCode).toBe(0);
    const final = (await world.telemetry()).at(-1)!;
    expect(final).toMatchObject({
      status: 'interrupted',
      run_id: '555000111',
      github: { run_id: '555000111', run_attempt: '2', job: 'unit', repository: 'acme/app', workflow: 'CI' },
    });
  });

  it('a hook file the job filled with a 300-character job name cannot suppress the report', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'hang' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const { child, done } = world.startAgent({}, {
      onLine: (line) => {
        if (!line.includes('"state":"running"')) return;
        setTimeout(() => {
          const env = { PATH: process.env.PATH, GITHUB_RUN_ID: '555000111', GITHUB_JOB: 'j'.repeat(300), GITHUB_REPOSITORY: 'acme/app', GITHUB_WORKFLOW: 'w'.repeat(3000) };
          spawnSync(jobHookPaths(world.stateDir).started, [], { env, encoding: 'utf8', timeout: 5000 });
          child.kill('SIGTERM');
        }, 800);
      },
    });
    const run = await done;
    expect(run.exitCode).toBe(0);
    const final = (await world.telemetry()).at(-1)!;
    expect(final).toMatchObject({ status: 'interrupted', interrupted_by: 'sigterm', github: { repository: 'acme/app' } });
    expect(final.github.job.length).toBeLessThanOrEqual(256);
    expect(run.logs.some((l) => l.msg === "telemetry message repaired to fit the orchestrator's types")).toBe(true);
  });

  it('a spot notice stops the job: interrupted by spot', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'hang' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    let noticeAt = 0;
    let seenAt = 0;
    const { done } = world.startAgent({ RUNS_FLEET_SPOT_POLL_SECONDS: '1' }, {
      onLine: (line) => {
        if (line.includes('"state":"running"')) {
          setTimeout(() => {
            noticeAt = Date.now();
            world.imds.setSpotAction({ action: 'terminate', time: new Date(Date.now() + 120_000).toISOString() });
          }, 1000);
        }
        if (line.includes('"msg":"spot interruption notice"')) seenAt = Date.now();
      },
    });
    const run = await done;
    expect(run.exitCode).toBe(0);
    const final = (await world.telemetry()).at(-1)!;
    expect(final).toMatchObject({ status: 'interrupted', interrupted_by: 'spot' });
    expect(world.runnerProcesses()).toEqual([]);
    // Detected within one poll period (1 s here), with a generous margin for a loaded machine.
    const detectMs = seenAt - noticeAt;
    process.stdout.write(`spot notice detected ${detectMs} ms after it appeared (poll period 1000 ms)\n`);
    expect(seenAt).toBeGreaterThan(0);
    expect(detectMs).toBeLessThan(2000);
  });

  it('a runner that ignores SIGTERM is killed after the grace period', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'ignore-sigterm' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const { child, done } = world.startAgent({ RUNS_FLEET_DRAIN_GRACE_SECONDS: '1' }, {
      onLine: (line) => {
        if (line.includes('"state":"running"')) setTimeout(() => child.kill('SIGTERM'), 1500);
      },
    });
    const run = await done;
    expect(run.exitCode).toBe(0);
    expect((await world.telemetry()).at(-1)).toMatchObject({ status: 'interrupted', interrupted_by: 'sigterm' });
    expect(world.runnerProcesses()).toEqual([]);
  });

  it('idle timeout: no job → bootstrap_failed with an idle error', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'no-job' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const run = await world.runAgent({ RUNS_FLEET_IDLE_TIMEOUT_MINUTES: '0.05' });
    expect(run.exitCode).toBe(0);
    const telemetry = await world.telemetry();
    // run.sh ran (started is the orchestrator's confirmation of that), but no job came.
    expect(telemetry.map((m) => m.status)).toEqual(['started', 'bootstrap_failed']);
    expect(telemetry[1]!.error).toContain('idle timeout');
    expect(world.runnerProcesses()).toEqual([]);
  });

  it('max runtime: a job that runs too long ends as timeout', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'hang' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    // 12 s: 6 s was tight for the boot on a loaded machine (it once ended bootstrap_failed with three suites running at once).
    const run = await world.runAgent({ RUNS_FLEET_MAX_RUNTIME_MINUTES: '0.2' });
    expect(run.exitCode).toBe(0);
    const final = (await world.telemetry()).at(-1)!;
    expect([final.status, final.error]).toEqual(['timeout', 'max runtime of 0.2 minutes reached']);
    expect(final.job_result).toBe('Canceled'); // what the runner printed while being stopped; the stop's reason is the status
    expect(world.runnerProcesses()).toEqual([]);
  });

  it('disk below the minimum stops the job: failure, interrupted by disk_full', async () => {
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'hang' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    // More than any disk has: the first periodic check (after 1 s) finds it "full".
    const run = await world.runAgent({ RUNS_FLEET_DISK_MIN_FREE_MB: '9999999', RUNS_FLEET_MONITOR_INTERVAL_SECONDS: '2' });
    expect(run.exitCode).toBe(0);
    expect((await world.telemetry()).at(-1)).toMatchObject({ status: 'failure', interrupted_by: 'disk_full' });
  });

  it('the runner runs as the unprivileged user, with an allow-listed environment', async () => {
    if (process.getuid?.() !== 0) return; // only meaningful when the agent is root
    world = await createWorld({ moto: e2e.moto, agent, runner: { behavior: 'succeed' } });
    await world.putRunnerConfig({ jit_config: JIT_SECRET, cache_url: 'http://127.0.0.1:9/cache/' });
    const run = await world.runAgent({ RUNS_FLEET_TERMINATE: 'false' });
    expect(run.exitCode).toBe(0);
    const envFile = join(world.runnerDir, '_diag', 'env.txt');
    const uid = Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${TEST_RUNNER_USER}:`))!.split(':')[2]);
    expect(statSync(envFile).uid).toBe(uid);
    const env = readFileSync(envFile, 'utf8');
    expect(env).toContain('ACTIONS_CACHE_URL=http://127.0.0.1:9/cache/');
    expect(env).not.toMatch(/AWS_|RUNS_FLEET_/);
    expect(env).not.toContain(JIT_SECRET);
    expect(env).not.toContain('RUNNER_ALLOW_RUNASROOT');
    // RUNS_FLEET_TERMINATE=false: everything but the termination.
    expect(await world.instanceState()).toBe('running');
  });

  it.each([
    ['malformed JSON', async (w: World) => w.putRunnerConfig('{"jit_config": '), {}, /not valid JSON/],
    ['a job_id that is not an integer', async (w: World) => w.putRunnerConfig({ jit_config: JIT_SECRET, job_id: 'job-7' }), {}, /job_id: expected a decimal integer/],
    ['an empty job_id', async (w: World) => w.putRunnerConfig({ jit_config: JIT_SECRET, job_id: '' }), {}, /job_id: required/],
    ['a max runtime above its maximum (a Node timer would fire at once)', async (w: World) => w.putRunnerConfig({ jit_config: JIT_SECRET }), { RUNS_FLEET_MAX_RUNTIME_MINUTES: '40000' }, /RUNS_FLEET_MAX_RUNTIME_MINUTES="40000" is above its maximum of 7200/],
    ['a non-numeric timeout', async (w: World) => w.putRunnerConfig({ jit_config: JIT_SECRET }), { RUNS_FLEET_IDLE_TIMEOUT_MINUTES: 'ten' }, /RUNS_FLEET_IDLE_TIMEOUT_MINUTES="ten"/],
  ] as const)('bad configuration (%s) → bootstrap_failed with a readable error, instance terminated', async (_, arrange, env, error) => {
    world = await createWorld({ moto: e2e.moto, agent });
    await arrange(world);
    const run = await world.runAgent({ RUNS_FLEET_TERMINATION_QUEUE_URL: world.queueUrl, ...env });
    const telemetry = await world.telemetry();
    expect(telemetry).toHaveLength(1);
    expect(telemetry[0]!.status).toBe('bootstrap_failed');
    expect(telemetry[0]!.error).toMatch(error);
    expect(await world.instanceState()).toBe('terminated');
    expect(run.exitCode).toBe(0);
    expect(await world.parameterExists()).toBe(false); // deleted even though unusable
    expect(run.logs.some((l) => l.msg === 'run.sh started')).toBe(false);
  });
});
