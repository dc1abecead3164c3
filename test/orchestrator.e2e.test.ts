/**
 * The built agent as a drop-in for the real runs-fleet orchestrator: configs written by the Go
 * mirror of its SSMStore (test/contract/orchestrator) seconds after the agent started, its
 * termination handler decoding every message, the instance's environment as the fleet's
 * bootstrap script gives it (RUNS_FLEET_INSTANCE_ID and AWS_REGION, the queue from the config).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createWorld, JIT_SECRET, JOB_ID, RUN_ID, TOKEN_SECRET, type World } from './support/agent-world.js';
import { startDenyProxy, type DenyProxy } from './support/deny-proxy.js';
import { readRunnerEnv } from './support/fake-runner.js';
import { jitFileDigests } from './support/jit.js';
import { MOTO_REGION, startMoto, type Moto } from './support/moto.js';
import { decodeAsOrchestrator, misread, orchestratorVerdicts } from './support/orchestrator.js';

let moto: Moto;
let world: World | undefined;
const proxies: DenyProxy[] = [];

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto.stop();
});
afterEach(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close();
  await world?.close();
  world = undefined;
});

/** What scripts/agent-bootstrap.sh gives a real fleet's instance: its id and region, nothing else of ours. */
const fleetEnv = (w: World) => ({ RUNS_FLEET_INSTANCE_ID: w.instanceId, AWS_REGION: MOTO_REGION, RUNS_FLEET_TERMINATION_QUEUE_URL: undefined });
const states = (logs: Record<string, unknown>[]) => logs.filter((l) => l.msg === 'state').map((l) => l.state);

async function expectBothParametersGone(w: World) {
  expect(await w.parameterExists(w.parameterName)).toBe(false);
  expect(await w.parameterExists(w.credentialName)).toBe(false);
}

describe('the agent with the orchestrator’s configs and decoder', () => {
  it('split layout written 6 s after start, the workflow fails: started, then success with job_result Failed; runner logs in S3', async () => {
    world = await createWorld({ moto, runner: { behavior: 'fail', jobName: 'unit-tests' } });
    const w = world;
    const agent = w.startAgent(fleetEnv(w));
    const written = w.putConfigAsOrchestrator(
      { jit_token: TOKEN_SECRET, runner_logs_bucket: w.bucket, runner_name: `runs-fleet-${w.instanceId}` },
      { delayMs: 6_000, realJit: true },
    );
    const [run, rendered] = await Promise.all([agent.done, written]);

    expect(run.exitCode).toBe(0);
    // With the final error beside the states: a lifecycle cut short says why. (telemetry() takes the
    // messages off the queue: read once.)
    const telemetry = await w.telemetry();
    expect({ states: states(run.logs), error: telemetry.at(-1)?.error ?? null }).toEqual({
      states: ['booting', 'downloading', 'registering', 'running', 'draining', 'reporting', 'terminating'],
      error: null,
    });
    // A real JIT config does not fit SSM's Standard tier; packed, it does — and the runner got the exact original.
    expect(rendered.jit_config_chars).toBeGreaterThan(4000);
    expect(rendered.config_chars + rendered.jit_config_chars!).toBeGreaterThan(4096);
    expect(rendered.credential_chars).toBeLessThan(4096);
    // The runner started from the exact files the original carries (decoded by the agent into the runner root).
    expect(readFileSync(join(w.runnerDir, '_diag', 'config-files.sha256'), 'utf8')).toBe(rendered.jit_files_sha256);
    expect(existsSync(join(w.runnerDir, '_diag', 'config-args.json'))).toBe(false); // JIT: no config.sh
    // Found within one fast poll of being written.
    const found = run.logs.find((l) => l.msg === 'runner config read and deleted')!;
    expect(found).toMatchObject({ layout: 'split', mode: 'jit' });
    const lagMs = Date.parse(String(found.time)) - Date.parse(rendered.written_at!);
    process.stdout.write(`config written → read: ${lagMs} ms (fast poll every 2 s)\n`);
    expect(lagMs).toBeLessThan(3_000);

    expect(telemetry.map((m) => m.status)).toEqual(['started', 'success']);
    const [started, final] = telemetry;
    expect(started).toMatchObject({ instance_id: w.instanceId, job_id: JOB_ID, completed_at: null });
    expect(started!.bootstrap_config_seconds).toBeGreaterThanOrEqual(5.5);
    expect(started!.bootstrap_total_seconds).toBeGreaterThan(0);
    expect(final).toMatchObject({ job_result: 'Failed', log_upload: 'uploaded', error: null, exit_code: 0 });
    expect(Number.isInteger(final!.duration_seconds)).toBe(true);

    const verdicts = await decodeAsOrchestrator(w.bodies);
    expect(verdicts.map((v) => [v.accepted, v.action, v.result])).toEqual([
      [true, 'confirm', undefined],
      [true, 'complete', 'served'],
    ]);
    expect(verdicts[1]!.message).toMatchObject({ instance_id: w.instanceId, job_id: JOB_ID, status: 'success', log_upload: 'uploaded' });

    // The runner's _diag logs at exactly the keys the orchestrator's readers derive.
    const prefix = `runner-logs/${RUN_ID}/${JOB_ID}/${w.instanceId}/`;
    const listed = await w.clients.s3.send(new ListObjectsV2Command({ Bucket: w.bucket, Prefix: prefix }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!).sort();
    expect(keys.some((k) => /\/Runner_\d{8}-\d{6}-utc\.log\.gz$/.test(k))).toBe(true);
    expect(keys.some((k) => /\/Worker_\d{8}-\d{6}-utc\.log\.gz$/.test(k))).toBe(true);
    for (const key of keys) {
      const object = await w.clients.s3.send(new GetObjectCommand({ Bucket: w.bucket, Key: key }));
      expect(object).toMatchObject({ ContentEncoding: 'gzip', ServerSideEncryption: 'AES256' });
      expect(object.Metadata).toMatchObject({ 'job-id': JOB_ID, 'run-id': RUN_ID, repo: 'acme/app' });
      const text = gunzipSync(Buffer.from(await object.Body!.transformToByteArray())).toString('utf8');
      expect(text).toBe(readFileSync(join(w.runnerDir, '_diag', key.slice(prefix.length, -'.gz'.length)), 'utf8'));
    }

    expect(await w.instanceState()).toBe('terminated');
    await expectBothParametersGone(w);
    for (const text of [run.stdout, run.stderr, w.bodies.join('\n')]) expect(text).not.toContain(TOKEN_SECRET);
  });

  it('legacy layout with both credentials: JIT mode, the token never used nor shown', async () => {
    world = await createWorld({ moto, runner: { behavior: 'succeed' } });
    const w = world;
    // Go's zero values as the orchestrator writes them: "org": "", "labels": null, "is_org": false.
    await w.putConfigAsOrchestrator({ jit_config: JIT_SECRET, jit_token: TOKEN_SECRET, org: '', labels: null, is_org: false, runner_group: '' }, { layout: 'legacy' });
    const run = await w.runAgent(fleetEnv(w));

    expect(run.exitCode).toBe(0);
    expect(run.logs.find((l) => l.msg === 'runner config read and deleted')).toMatchObject({ layout: 'legacy', mode: 'jit' });
    expect(readFileSync(join(w.runnerDir, '_diag', 'config-files.sha256'), 'utf8')).toBe(jitFileDigests(JIT_SECRET));
    expect(existsSync(join(w.runnerDir, '_diag', 'config-args.json'))).toBe(false);
    const verdicts = await orchestratorVerdicts(w);
    expect(verdicts.map((v) => [v.status, v.verdict.action, v.verdict.result])).toEqual([
      ['started', 'confirm', undefined],
      ['success', 'complete', 'served'],
    ]);
    expect(await w.instanceState()).toBe('terminated');
    await expectBothParametersGone(w);
    for (const text of [run.stdout, run.stderr, w.bodies.join('\n')]) {
      expect(text).not.toContain(TOKEN_SECRET);
      expect(text).not.toContain(JIT_SECRET);
    }
  });

  it('token-only config (no JIT minted): config.sh with the token through ACTIONS_RUNNER_INPUT_TOKEN', async () => {
    world = await createWorld({ moto, runner: { behavior: 'succeed' } });
    const w = world;
    await w.putConfigAsOrchestrator({ jit_token: TOKEN_SECRET, runner_group: 'ci', runner_name: 'rf-1' });
    const run = await w.runAgent(fleetEnv(w));

    expect(run.exitCode).toBe(0);
    expect(JSON.parse(readFileSync(join(w.runnerDir, '_diag', 'config-input.json'), 'utf8'))).toEqual({ tokenSource: 'environment' });
    const argv = JSON.parse(readFileSync(join(w.runnerDir, '_diag', 'config-args.json'), 'utf8')) as string[];
    expect(argv).toEqual(expect.arrayContaining(['--url', `${w.github.webUrl}/acme/app`, '--name', 'rf-1', '--runnergroup', 'ci', '--ephemeral']));
    expect(argv.join(' ')).not.toContain(TOKEN_SECRET);
    const verdicts = await orchestratorVerdicts(w);
    expect(misread(verdicts)).toEqual([]);
    expect(verdicts.map((v) => v.status)).toEqual(['started', 'success']);
    expect(await w.instanceState()).toBe('terminated');
    await expectBothParametersGone(w);
  });

  it('what the runs-fleet AMI expects: tool-cache misses, the buildx shim’s variables and outcome, the operator’s variables for the job', async () => {
    const jobScript = [
      // A tool installed on demand (setup-node writes the marker when the install completed).
      'mkdir -p "$AGENT_TOOLSDIRECTORY/node/22.1.0" && : > "$AGENT_TOOLSDIRECTORY/node/22.1.0/x64.complete"',
      // The buildx shim, as it runs inside a `docker buildx build` step.
      'echo "engaged:s3-cache" >> "$RUNS_FLEET_BUILDKIT_CACHE_OUTCOME"',
    ].join('\n');
    world = await createWorld({ moto, runner: { behavior: 'succeed', jobScript } });
    const w = world;
    const tools = join(w.baseDir, 'hostedtoolcache');
    mkdirSync(join(tools, 'Python', '3.12.1'), { recursive: true });
    writeFileSync(join(tools, 'Python', '3.12.1', 'x64.complete'), ''); // baked into the AMI
    chmodSync(tools, 0o777);
    chmodSync(join(tools, 'Python'), 0o777);
    await w.putConfigAsOrchestrator({ jit_config: JIT_SECRET, jit_token: TOKEN_SECRET, buildkit_cache_bucket: 'buildkit-bucket', buildkit_cache_region: 'eu-west-1', buildkit_cache_prefix: 'buildkit/' });
    // What the runs-fleet unit sets for the job (packer/provision-runs-fleet.sh), beside the agent's own.
    const run = await w.runAgent({ ...fleetEnv(w), AGENT_TOOLSDIRECTORY: tools, PIPX_HOME: '/opt/pipx', PIPX_BIN_DIR: '/opt/pipx_bin', VAULT_ADDR: 'https://vault:8200' });

    expect(run.exitCode).toBe(0);
    const final = (await w.telemetry()).at(-1)!;
    expect(final).toMatchObject({ status: 'success', tool_cache_misses: ['node/22.1.0/x64'], build_cache_interception: 'engaged', log_upload: 'disabled' });
    const jobEnv = await readRunnerEnv(w.runnerDir);
    expect(jobEnv).toMatchObject({
      AGENT_TOOLSDIRECTORY: tools,
      PIPX_HOME: '/opt/pipx',
      PIPX_BIN_DIR: '/opt/pipx_bin',
      RUNS_FLEET_BUILDKIT_CACHE_BUCKET: 'buildkit-bucket',
      RUNS_FLEET_BUILDKIT_CACHE_REGION: 'eu-west-1',
      RUNS_FLEET_BUILDKIT_CACHE_PREFIX: 'buildkit/',
      RUNS_FLEET_BUILDKIT_CACHE_OUTCOME: join(w.runnerDir, '_rf_buildkit_cache_outcome'),
    });
    // The agent's own variables and its secrets never reach the job (the buildx shim's, from .env, do).
    const leaked = Object.keys(jobEnv).filter((k) => /^(AWS_|VAULT_)/.test(k) || (k.startsWith('RUNS_FLEET_') && !k.startsWith('RUNS_FLEET_BUILDKIT_CACHE_')));
    expect(leaked).toEqual([]);
    expect(Object.values(jobEnv).join('\n')).not.toContain(TOKEN_SECRET);
    expect(misread(await orchestratorVerdicts(w))).toEqual([]);
  });

  it('a warm-pool stop while waiting: SIGTERM → exit 0 within 5 s, no message, no TerminateInstances', async () => {
    world = await createWorld({ moto });
    const w = world;
    let signalledAt = 0;
    const { child, done } = w.startAgent(fleetEnv(w), {
      onLine: (line) => {
        if (signalledAt === 0 && line.includes('standby: waiting for the runner config')) {
          setTimeout(() => {
            signalledAt = Date.now();
            child.kill('SIGTERM');
          }, 1_500);
        }
      },
    });
    const run = await done;
    const exitMs = Date.now() - signalledAt;
    process.stdout.write(`standby SIGTERM → exit: ${exitMs} ms\n`);
    expect(signalledAt).toBeGreaterThan(0);
    expect(run.exitCode).toBe(0);
    expect(exitMs).toBeLessThan(5_000);
    expect(states(run.logs)).toEqual(['booting', 'standbyEnded']);
    expect(await w.telemetry()).toEqual([]);
    expect(await w.instanceState()).toBe('running');
    expect(run.logs.find((l) => l.msg === 'lifecycle finished')).toMatchObject({ status: 'no_job', standbyEnd: 'sigterm' });
  });

  it('a warm-pool stop while the prefetch is extracting the runner: still exit 0, nothing reported', async () => {
    world = await createWorld({ moto });
    const w = world;
    w.github.setThrottle(300); // the download trickles: tar is running when the stop comes
    let signalledAt = 0;
    const { child, done } = w.startAgent(fleetEnv(w), {
      onLine: (line) => {
        if (signalledAt === 0 && line.includes('"source":"github"') && line.includes('runner download progress')) {
          signalledAt = Date.now();
          child.kill('SIGTERM');
        }
      },
    });
    const run = await done;
    w.github.setThrottle(undefined);
    expect(signalledAt).toBeGreaterThan(0);
    expect({ exit: run.exitCode, signal: run.signal }).toEqual({ exit: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect(run.logs.find((l) => l.msg === 'lifecycle finished')).toMatchObject({ status: 'no_job', standbyEnd: 'sigterm' });
    expect(await w.telemetry()).toEqual([]);
    expect(await w.instanceState()).toBe('running');
  });

  it('the standby deadline: exit 0 with nothing reported and nothing terminated', async () => {
    world = await createWorld({ moto });
    const w = world;
    const run = await w.runAgent({ ...fleetEnv(w), RUNS_FLEET_STANDBY_DEADLINE_MINUTES: '0.05' });
    expect(run.exitCode).toBe(0);
    expect(run.durationMs).toBeLessThan(10_000);
    expect(states(run.logs)).toEqual(['booting', 'standbyEnded']);
    expect(await w.telemetry()).toEqual([]);
    expect(await w.instanceState()).toBe('running');
    expect(run.logs.find((l) => l.msg === 'lifecycle finished')).toMatchObject({ status: 'no_job', standbyEnd: 'deadline' });
  });

  it('least privilege as deployed: denied SSM delete, S3 writes and CloudWatch Logs are warnings, never a stuck or failed job', async () => {
    world = await createWorld({ moto, runner: { behavior: 'succeed' } });
    const w = world;
    const ssm = await startDenyProxy(moto.endpoint, ['AmazonSSM.DeleteParameter']);
    const s3 = await startDenyProxy(moto.endpoint, ['S3:PUT']);
    const logs = await startDenyProxy(moto.endpoint, ['Logs_20140328.CreateLogStream', 'Logs_20140328.PutLogEvents', 'Logs_20140328.CreateLogGroup']);
    proxies.push(ssm, s3, logs);
    await w.putConfigAsOrchestrator({ jit_token: TOKEN_SECRET, jit_config: JIT_SECRET, runner_logs_bucket: w.bucket });
    const run = await w.runAgent({
      ...fleetEnv(w),
      AWS_ENDPOINT_URL_SSM: ssm.url,
      AWS_ENDPOINT_URL_S3: s3.url,
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: logs.url,
      RUNS_FLEET_CONFIG_BUCKET: w.bucket, // the GitHub download is then offered to the cache: denied
      RUNS_FLEET_CACHE_UPLOAD: 'true',
    });

    expect(run.exitCode).toBe(0);
    expect(run.durationMs).toBeLessThan(30_000);
    const final = (await w.telemetry()).at(-1)!;
    expect(final).toMatchObject({ status: 'success', log_upload: 'failed' });
    expect(final.log_lines_dropped).toBeGreaterThan(0);
    expect(ssm.denied).toEqual(['AmazonSSM.DeleteParameter', 'AmazonSSM.DeleteParameter']);
    expect(s3.denied.some((d) => d.includes(`/runner-logs/${RUN_ID}/`))).toBe(true);
    const warnings = run.logs.filter((l) => l.level === 'warn' || l.level === 40).map((l) => String(l.msg));
    expect(warnings).toEqual(expect.arrayContaining([expect.stringContaining('the instance role may not delete it')]));
    expect(await w.instanceState()).toBe('terminated');
    // The orchestrator deletes both when the job ends (pkg/termination/handler.go): still there here.
    expect(await w.parameterExists(w.credentialName)).toBe(true);
    expect(misread(await orchestratorVerdicts(w))).toEqual([]);
  });
});
