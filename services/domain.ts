/**
 * The product's domain types: what the config says, what was installed, what the job left, and
 * the termination-queue message. Services and the machine both use them; they depend on nothing,
 * so imports point one way (machines → services, never back).
 */

export interface Identity {
  instanceId: string;
  region: string;
}

/** The public part of the runner config (no secrets). */
export interface JobSpec {
  parameterName: string;
  mode: 'jit' | 'token';
  org?: string;
  repo?: string;
  isOrg: boolean;
  labels: string[];
  runnerGroup?: string;
  runnerName?: string;
  runId?: string;
  jobId?: string;
  queueUrl?: string;
  cacheUrl?: string;
  /** When the orchestrator wrote the config (RFC 3339), if it said. */
  createdAt?: string;
  /** `split` = …/config + …/credential (current orchestrators); `legacy` = one parameter. */
  layout?: 'split' | 'legacy';
  /** The buildx layer-cache shim's settings, written into the runner's `.env`. */
  buildkitCache?: { bucket: string; region?: string; prefix?: string };
  /** Where the runner's `_diag` logs go after the job (`{prefix}{run_id}/{job_id}/{instance_id}/{file}.gz`). */
  runnerLogs?: { bucket: string; prefix?: string };
}

export interface InstalledRunner {
  dir: string;
  version: string;
  source: 'installed' | 's3' | 'github';
  /** A GitHub download kept for the S3 cache (RUNS_FLEET_CACHE_UPLOAD=true): the chart's cacheUpload child uploads it. */
  cacheArchive?: CacheArchive;
}

/** The verified tarball of a GitHub download, kept beside (never inside) the runner dir. */
export interface CacheArchive {
  file: string;
  version: string;
  arch: 'x64' | 'arm64';
  sha256: string;
  bytes: number;
}

export type FinalStatus = 'success' | 'failure' | 'timeout' | 'interrupted' | 'bootstrap_failed';
/** The runner logs' upload to S3, as the orchestrator counts it (pkg/agent/logship). */
export type LogUploadOutcome = 'uploaded' | 'partial' | 'failed' | 'skipped' | 'disabled';

/** A failed download, as the retry loop needs it. */
export interface DownloadFailure {
  message: string;
  retriable: boolean;
  retryAfterMs?: number;
}

/** What registering prepared for the job, for reporting to compare against. */
export interface JobPrep {
  /** Tool-cache entries before the job (`Tool/version/platform`); undefined = the snapshot failed. */
  toolCacheBefore?: string[];
  /** The file the buildx cache shim writes its outcome to, when the config enabled it. */
  buildkitOutcomeFile?: string;
}

/** What the job left that the orchestrator counts. */
export interface JobFacts {
  toolCacheMisses?: string[];
  buildCacheInterception?: string;
}
export type TelemetryStatus = 'started' | FinalStatus;
export type InterruptedBy = 'sigterm' | 'spot' | 'disk_full';

/**
 * The termination-queue message. Its types are the orchestrator's Go `Message`
 * (pkg/termination/handler.go): integer `exit_code` and `duration_seconds`, RFC 3339
 * timestamps or null, `job_id` a decimal string. Fields the orchestrator does not know
 * (`timings`, …) it ignores.
 */
export interface TelemetryMessage {
  instance_id: string | null;
  job_id: string | null;
  run_id: string | null;
  status: TelemetryStatus;
  exit_code: number | null;
  duration_seconds: number;
  started_at: string;
  completed_at: string | null;
  error: string | null;
  interrupted_by: InterruptedBy | null;
  /** The runner's own word for the workflow (`Succeeded`, `Failed`, `Canceled`, …), when it printed one. */
  job_result?: string;
  log_upload?: LogUploadOutcome;
  tool_cache_misses?: string[];
  build_cache_interception?: string;
  bootstrap_boot_seconds?: number;
  bootstrap_config_seconds?: number;
  bootstrap_runner_seconds?: number;
  bootstrap_register_seconds?: number;
  bootstrap_total_seconds?: number;
  timings: Record<string, number>;
  memory_warnings: number;
  log_lines_shipped?: number;
  log_lines_dropped?: number;
  /** The job's own identity from the job hooks (added by the telemetry actor when they ran). */
  github?: { run_id?: string; run_attempt?: string; job?: string; repository?: string; workflow?: string };
}

/** What the runner process reports (services/runner/process.ts), as events the machine handles. */
/** run.sh was spawned (it runs, as the runner user): the moment the orchestrator's `started` means. */
export interface RunnerSpawnedEvent {
  type: 'RUNNER_SPAWNED';
  pid: number;
}

/** The runner printed `Listening for Jobs`. */
export interface RunnerListeningEvent {
  type: 'RUNNER_LISTENING';
}

/** The runner printed `Running job: NAME`. */
export interface JobStartedEvent {
  type: 'JOB_STARTED';
  jobName: string;
  at: string;
}

/** The runner printed `Job NAME completed with result: RESULT`. */
export interface JobCompletedEvent {
  type: 'JOB_COMPLETED';
  jobName: string;
  result: string;
}

/** The runner process (group leader `run.sh`) exited and its output was fully read. */
export interface RunnerExitedEvent {
  type: 'RUNNER_EXITED';
  exitCode: number | null;
  signal: string | null;
}

/**
 * The runner printed a line after which it will never get its job (services/runner/output.ts
 * `fatalRunnerLine`): a refused version, a session conflict, a registration gone, a fatal error.
 */
export interface RunnerFatalEvent {
  type: 'RUNNER_FATAL';
  reason: 'deprecated' | 'session-exists' | 'runner-gone' | 'registration-deleted' | 'error';
  /** The line, redacted. */
  line: string;
}

export type RunnerEvent = RunnerSpawnedEvent | RunnerListeningEvent | JobStartedEvent | JobCompletedEvent | RunnerExitedEvent | RunnerFatalEvent;

/**
 * What the chart tells the runner process while draining (draining.signalling, then
 * draining.killing): SIGTERM to run.sh's process group; then SIGKILL to all of the job (its
 * session, its cgroup, its uid). The timing between them is the chart's (drainGrace, killWait).
 */
export type RunnerCommand =
  | { type: 'STOP'; /** For the job's own log: why the agent stops it (becomes an `::error` annotation). */ notice?: string }
  | { type: 'KILL' }
  /** For the job's own log, with the job going on: low memory (becomes a `::warning` annotation). */
  | { type: 'NOTE'; notice: string };
