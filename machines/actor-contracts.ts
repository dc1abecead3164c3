/**
 * The side effects the agent machine invokes, by name, with their input and output.
 * The machine is defined against these contracts; `actors/` provides the real
 * implementations and tests provide fakes, both through `machine.provide()`.
 */
import { fromCallback, fromPromise, type AnyEventObject } from 'xstate';
import type { Settings } from '../services/settings.js';
import type { AgentEvent, LogShipperCommand, RunnerCommand } from './events.js';
import type { TelemetryMessage } from './outcome.js';
import type { Identity, InstalledRunner, JobFacts, JobPrep, JobSpec, LogUploadOutcome } from './types.js';
import type { CacheArchive } from '../services/domain.js';

export interface IdentityInput { settings: Settings }
export interface RunnerConfigInput { settings: Settings; identity: Identity }
export interface DownloadInput { settings: Settings; attempt: number }
export type { RegisterInput, RegistrationResult } from '../services/runner/registration.js';
import type { RegisterInput, RegistrationResult } from '../services/runner/registration.js';
import type { RunnerUser } from '../services/runner/user.js';
import type { JobHookPaths } from '../services/runner/job-hooks.js';
export interface RunnerProcessInput { settings: Settings; jobSpec: JobSpec; runner: InstalledRunner; user: RunnerUser; hooks?: JobHookPaths }
export interface RunnerUserInput { settings: Settings }
export interface TelemetryInput {
  queueUrl?: string;
  message: TelemetryMessage;
  region?: string;
  /** This attempt's own timeout. */
  timeoutMs?: number;
  /** The agent's state dir: a final message carries what the job hooks recorded there. */
  stateDir?: string;
}
export type { TelemetryResult } from '../services/aws/telemetry.js';
import type { TelemetryResult } from '../services/aws/telemetry.js';
export interface CleanupInput { settings: Settings; /** Unknown when registering never resolved it: then no job ran, and nothing is the job's. */ user?: RunnerUser }
export interface LogShipperInput { settings: Settings }
export interface CacheUploadInput { settings: Settings; archive: CacheArchive }
export interface TerminateInput { instanceId: string; region: string }
export interface WatchdogInput { settings: Settings; identity?: Identity; jobSpec?: JobSpec }
export interface IsolateJobInput { settings: Settings; user: RunnerUser }
export interface PrepareJobInput {
  settings: Settings;
  jobSpec: JobSpec;
  runner: InstalledRunner;
  /** For `.setup_info` and the started hook's notice: what the boot knows so far. */
  setup: {
    instanceId?: string;
    bootSeconds?: number;
    readySeconds: number;
    timings: Record<string, number>;
    maxRuntimeAtMs: number;
    hooks?: JobHookPaths;
  };
}
export interface InspectJobInput { settings: Settings; jobPrep?: JobPrep; ranJob: boolean }
export interface RunnerLogsInput { settings: Settings; jobSpec?: JobSpec; instanceId?: string; region?: string; budgetMs: number }

/** Stand-in used until `provide()` gives the real implementation: failing loudly beats a silent no-op. */
function notProvided<TOutput, TInput>(name: string) {
  return fromPromise<TOutput, TInput>(async () => {
    throw new Error(`actor "${name}" was not provided to the agent machine`);
  });
}
function notProvidedCallback<TInput, TReceived extends AnyEventObject = AnyEventObject>(name: string) {
  return fromCallback<TReceived, TInput, AgentEvent>(() => {
    throw new Error(`actor "${name}" was not provided to the agent machine`);
  });
}

export const actorContracts = {
  /** Instance id and region (env, else IMDSv2). */
  resolveIdentity: notProvided<Identity, IdentityInput>('resolveIdentity'),
  /** Read, validate and delete the runner config in SSM; secrets go to the vault. */
  readRunnerConfig: notProvided<JobSpec, RunnerConfigInput>('readRunnerConfig'),
  /** Get the runner: already installed, S3 cache, or GitHub Releases (verified). */
  downloadRunner: notProvided<InstalledRunner, DownloadInput>('downloadRunner'),
  /** The same download started during standby, as a child that reports RUNNER_PREFETCHED / PREFETCH_FAILED. */
  prefetchRunner: notProvidedCallback<DownloadInput>('prefetchRunner'),
  /** A GitHub download kept for the S3 cache, uploaded by a child of the lifecycle (CACHE_UPLOAD_FINISHED). */
  uploadRunnerCache: notProvidedCallback<CacheUploadInput>('uploadRunnerCache'),
  /** Token mode: `config.sh --unattended --ephemeral ...`. JIT mode: nothing to run. */
  registerRunner: notProvided<RegistrationResult, RegisterInput>('registerRunner'),
  /** Who the job runs as: resolved once, first thing in registering. */
  resolveRunnerUser: notProvided<RunnerUser, RunnerUserInput>('resolveRunnerUser'),
  /** Before anything runs as the runner user: its uid cannot reach IMDS (and so the instance role). */
  isolateJob: notProvided<{ imds: 'blocked' | 'allowed' | 'same-user'; mechanism?: string }, IsolateJobInput>('isolateJob'),
  /** Before run.sh: the buildx cache shim's variables into the runner's `.env`, a tool-cache snapshot. */
  prepareJob: notProvided<JobPrep, PrepareJobInput>('prepareJob'),
  /** After the job: the tool-cache entries it added, the buildx shim's outcome. */
  inspectJob: notProvided<JobFacts, InspectJobInput>('inspectJob'),
  /** The runner's `_diag` logs, gzipped, to the config's runner-logs bucket; resolves the outcome. */
  uploadRunnerLogs: notProvided<LogUploadOutcome, RunnerLogsInput>('uploadRunnerLogs'),
  /** `run.sh` as the runner user; output parsed into events; STOP drains its process group. */
  runnerProcess: notProvidedCallback<RunnerProcessInput, RunnerCommand>('runnerProcess'),
  /** One attempt at one telemetry message to SQS; rejects with a classified TelemetryError (the chart retries). */
  sendTelemetry: notProvided<TelemetryResult, TelemetryInput>('sendTelemetry'),
  /** Remove the runner's secrets and work dir, and the agent's state files. */
  cleanup: notProvided<void, CleanupInput>('cleanup'),
  /** EC2 TerminateInstances on this instance. */
  terminateInstance: notProvided<void, TerminateInput>('terminateInstance'),
  /** SIGTERM/SIGINT and crashes (uncaught exception, unhandled rejection) → events. */
  processWatcher: notProvidedCallback<void>('processWatcher'),
  /** IMDS spot `instance-action` poller → SPOT_INTERRUPTION. */
  spotWatcher: notProvidedCallback<WatchdogInput>('spotWatcher'),
  /** Disk and memory checks → DISK_FULL, MEMORY_LOW. */
  resourceMonitor: notProvidedCallback<WatchdogInput>('resourceMonitor'),
  /** The log shipper's owner, for the whole lifecycle: SHIP_LOGS starts shipping, FLUSH_LOGS → LOGS_FLUSHED. */
  logShipper: notProvidedCallback<LogShipperInput, LogShipperCommand>('logShipper'),
};
