/**
 * A whole world for the built agent to run in: moto (SSM, SQS, EC2, S3, CloudWatch Logs),
 * a fake GitHub serving a fake runner tarball, a fake IMDS, an EC2 instance to terminate,
 * the runner config in SSM. Used by the end-to-end tests, the fault-injection suite,
 * `make demo` and `make bench`.
 */
import { fakeJitConfig } from './jit.js';
import { CloudWatchLogsClient, CreateLogGroupCommand, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startFakeGitHub, type FakeGitHub } from './fake-github.js';
import { startFakeImds, type FakeImds } from './fake-imds.js';
import { buildFakeRunnerTarball, type FakeRunnerOptions } from './fake-runner.js';
import { MOTO_REGION, startMoto, type Moto } from './moto.js';
import { putConfigAsOrchestrator, type OrchestratorConfig, type Rendered } from './orchestrator.js';
import { ensureUser, WORKER_SUFFIX } from './test-user.js';

export const RUNNER_VERSION = '2.330.0';
/** A JIT config shaped like GitHub's (its files: .runner, .credentials, .credentials_rsaparams). */
export const JIT_SECRET = fakeJitConfig('runs-fleet-test', 'jit-config-secret-value');
export const TOKEN_SECRET = 'AABBCCREGISTRATIONTOKENSECRET42';
export const CACHE_SECRET = 'cache-token-secret-9f8e7d';
export const RUN_ID = '9876543210';
export const JOB_ID = '1234567';
export const AGENT_BUNDLE = resolve('dist/runs-fleet-agent.cjs');
/** Non-root user the runner runs as when the tests run as root. */
export const TEST_RUNNER_USER = `rfa-runner${WORKER_SUFFIX}`;

export interface AgentRun {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** The agent's JSON log lines. */
  logs: Record<string, unknown>[];
  durationMs: number;
  pid: number;
}

export interface World {
  moto: Moto;
  github: FakeGitHub;
  imds: FakeImds;
  instanceId: string;
  queueUrl: string;
  logGroup: string;
  bucket: string;
  parameterName: string;
  /** The split layout's second parameter, beside the config. */
  credentialName: string;
  baseDir: string;
  runnerDir: string;
  stateDir: string;
  clients: { ssm: SSMClient; sqs: SQSClient; ec2: EC2Client; logs: CloudWatchLogsClient; s3: S3Client };
  /** Write the runner config to SSM (SecureString), the legacy single-parameter way. */
  putRunnerConfig(config: Record<string, unknown> | string): Promise<void>;
  /**
   * Write the config as the orchestrator does (test/contract/orchestrator): its Go types, the
   * split layout by default, credential first, after `delayMs`. Defaults: this world's ids and queue.
   */
  putConfigAsOrchestrator(config: OrchestratorConfig, options?: { layout?: 'split' | 'legacy'; delayMs?: number; realJit?: boolean }): Promise<Rendered>;
  /** Whether the config parameter (or `name`) is still in SSM. */
  parameterExists(name?: string): Promise<boolean>;
  /** Every raw message body `telemetry()` received, for the orchestrator's decoder. */
  readonly bodies: string[];
  /** The environment the agent gets (moto endpoints, fakes, short timers). */
  env(overrides?: Record<string, string | undefined>): Record<string, string>;
  /** Start the built agent; resolves when it exits. */
  startAgent(
    overrides?: Record<string, string | undefined>,
    options?: { onLine?: (line: string) => void; onStderr?: (text: string) => void; args?: string[]; bin?: string[] },
  ): {
    child: ReturnType<typeof spawn>;
    done: Promise<AgentRun>;
  };
  runAgent(overrides?: Record<string, string | undefined>): Promise<AgentRun>;
  telemetry(): Promise<Record<string, any>[]>;
  logEvents(stream?: string): Promise<string[]>;
  instanceState(): Promise<string | undefined>;
  /** Pids of processes whose cwd is inside the runner dir (the runner and its children). */
  runnerProcesses(): number[];
  close(): Promise<void>;
}

/** The runner user for the agent when the tests run as root (else the agent runs the runner as itself). */
export function ensureRunnerUser(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const user = ensureUser(TEST_RUNNER_USER);
  if (typeof user === 'string') throw new Error(`could not create the test runner user ${TEST_RUNNER_USER}: ${user}`);
  return user.name;
}

export interface WorldOptions {
  runner?: Partial<FakeRunnerOptions>;
  moto?: Moto;
  /** How to run the agent: default `node dist/runs-fleet-agent.cjs`; e.g. `[AGENT_BINARY]` for the single executable. */
  agent?: string[];
}

/** The single executable `make dist` builds for this machine's architecture. */
export const AGENT_BINARY = resolve(`dist/runs-fleet-agent-linux-${process.arch === 'arm64' ? 'arm64' : 'x64'}`);

export async function createWorld(options: WorldOptions = {}): Promise<World> {
  const worldOptions = options;
  const moto = options.moto ?? (await startMoto());
  const ownsMoto = !options.moto;
  const tarball = await buildFakeRunnerTarball({ version: RUNNER_VERSION, behavior: 'succeed', jobSeconds: 0.3, ...options.runner });
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const github = await startFakeGitHub({ version: RUNNER_VERSION, tarballs: { [arch]: tarball } });

  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const config = { endpoint: moto.endpoint, region: MOTO_REGION, credentials };
  const clients = {
    ssm: new SSMClient(config),
    sqs: new SQSClient(config),
    ec2: new EC2Client(config),
    logs: new CloudWatchLogsClient(config),
    s3: new S3Client({ ...config, forcePathStyle: true }),
  };
  const run = await clients.ec2.send(new RunInstancesCommand({ ImageId: 'ami-0123456789abcdef0', MinCount: 1, MaxCount: 1, InstanceType: 't3.micro' }));
  const instanceId = run.Instances![0]!.InstanceId!;
  const imds = await startFakeImds({ instanceId, region: MOTO_REGION });
  const suffix = instanceId.slice(-8);
  const queueUrl = (await clients.sqs.send(new CreateQueueCommand({ QueueName: `termination-${suffix}` }))).QueueUrl!;
  const logGroup = `/runs-fleet/agents-${suffix}`;
  await clients.logs.send(new CreateLogGroupCommand({ logGroupName: logGroup }));
  const bucket = `runs-fleet-cache-${suffix}`.toLowerCase();
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const parameterName = `/runs-fleet/runners/${instanceId}/config`;
  const credentialName = `/runs-fleet/runners/${instanceId}/credential`;

  const baseDir = mkdtempSync(join(tmpdir(), 'rfa-world-'));
  chmodSync(baseDir, 0o755); // the runner user must be able to reach its dir
  const runnerDir = join(baseDir, 'actions-runner');
  const stateDir = join(baseDir, 'state');
  const runnerUser = ensureRunnerUser();

  const world: World = {
    moto,
    github,
    imds,
    instanceId,
    queueUrl,
    logGroup,
    bucket,
    parameterName,
    credentialName,
    bodies: [],
    baseDir,
    runnerDir,
    stateDir,
    clients,
    async putRunnerConfig(value) {
      const text =
        typeof value === 'string'
          ? value
          : JSON.stringify({ org: 'acme', repo: 'acme/app', run_id: RUN_ID, job_id: JOB_ID, termination_queue_url: queueUrl, labels: ['self-hosted', 'linux'], ...value });
      await clients.ssm.send(new PutParameterCommand({ Name: parameterName, Value: text, Type: 'SecureString', Overwrite: true, Tier: 'Advanced' }));
    },
    putConfigAsOrchestrator(config, options = {}) {
      return putConfigAsOrchestrator({
        endpoint: moto.endpoint,
        region: MOTO_REGION,
        instanceId,
        config: { org: 'acme', repo: 'acme/app', run_id: RUN_ID, job_id: JOB_ID, termination_queue_url: queueUrl, labels: ['self-hosted', 'linux'], is_org: false, created_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), ...config },
        ...options,
      });
    },
    async parameterExists(name = parameterName) {
      try {
        await clients.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
        return true;
      } catch (error) {
        if ((error as Error).name === 'ParameterNotFound') return false;
        throw error;
      }
    },
    env(overrides = {}) {
      const env: Record<string, string | undefined> = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        LANG: 'C.UTF-8',
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
        RUNS_FLEET_GITHUB_API_URL: github.apiUrl,
        RUNS_FLEET_GITHUB_URL: github.webUrl,
        RUNS_FLEET_RUNNER_VERSION: RUNNER_VERSION,
        RUNS_FLEET_RUNNER_DIR: runnerDir,
        RUNS_FLEET_STATE_DIR: stateDir,
        RUNS_FLEET_LOG_GROUP: logGroup,
        RUNS_FLEET_RUNNER_USER: runnerUser,
        RUNS_FLEET_DOWNLOAD_MIN_FREE_MB: '10',
        RUNS_FLEET_DISK_MIN_FREE_MB: '10',
        RUNS_FLEET_SPOT_POLL_SECONDS: '0.2',
        RUNS_FLEET_MONITOR_INTERVAL_SECONDS: '1',
        RUNS_FLEET_DRAIN_GRACE_SECONDS: '3',
        RUNS_FLEET_IDLE_TIMEOUT_MINUTES: '1',
        RUNS_FLEET_MAX_RUNTIME_MINUTES: '2',
        RUNS_FLEET_REPORT_TIMEOUT_SECONDS: '10',
        RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS: '5',
        ...overrides,
      };
      return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
    },
    startAgent(overrides = {}, options = {}) {
      const started = Date.now();
      const [file, ...prefix] = options.bin ?? worldOptions.agent ?? [process.execPath, AGENT_BUNDLE];
      const child = spawn(file!, [...prefix, 'run', ...(options.args ?? [])], { env: world.env(overrides), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let pending = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        stdout += text;
        if (options.onLine) {
          pending += text;
          const lines = pending.split('\n');
          pending = lines.pop()!;
          for (const line of lines) options.onLine(line);
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        options.onStderr?.(stderr);
      });
      const done = new Promise<AgentRun>((resolveRun) => {
        child.on('close', (exitCode, signal) => {
          const logs = stdout
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => {
              try {
                return JSON.parse(l) as Record<string, unknown>;
              } catch {
                return { unparsed: l };
              }
            });
          resolveRun({ exitCode, signal, stdout, stderr, logs, durationMs: Date.now() - started, pid: child.pid! });
        });
      });
      return { child, done };
    },
    runAgent(overrides = {}) {
      return world.startAgent(overrides).done;
    },
    async telemetry() {
      const messages: Record<string, any>[] = [];
      for (let i = 0; i < 20; i += 1) {
        const out = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 600 }));
        if (!out.Messages?.length) break;
        for (const m of out.Messages) {
          world.bodies.push(m.Body!);
          messages.push(JSON.parse(m.Body!));
        }
      }
      return messages;
    },
    async logEvents(stream = `${instanceId}/${RUN_ID}`) {
      const lines: string[] = [];
      let token: string | undefined;
      for (;;) {
        const out = await clients.logs.send(new GetLogEventsCommand({ logGroupName: logGroup, logStreamName: stream, startFromHead: true, nextToken: token }));
        for (const e of out.events ?? []) lines.push(e.message ?? '');
        if (!out.nextForwardToken || out.nextForwardToken === token || (out.events ?? []).length === 0) break;
        token = out.nextForwardToken;
      }
      return lines;
    },
    async instanceState() {
      const out = await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
    },
    runnerProcesses() {
      const pids: number[] = [];
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const cwd = readlinkSync(`/proc/${entry}/cwd`);
          if (cwd === runnerDir || cwd.startsWith(`${runnerDir}/`)) pids.push(Number(entry));
        } catch {
          /* gone or not ours */
        }
      }
      return pids;
    },
    async close() {
      for (const pid of world.runnerProcesses()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await Promise.all([github.close(), imds.close()]);
      for (const client of Object.values(clients)) client.destroy();
      if (ownsMoto) await moto.stop();
      if (existsSync(baseDir)) rmSync(baseDir, { recursive: true, force: true });
    },
  };
  return world;
}
