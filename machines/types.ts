/**
 * Types shared by the agent machine, its actors and the command line.
 * Context holds no secret: credentials stay in the SecretVault service, and the
 * context only says which mode they are for.
 */
import type { Env, Settings } from '../services/settings.js';
import type { StopReason } from './events.js';
import type { RunnerUser } from '../services/runner/user.js';
import type { JobHookPaths } from '../services/runner/job-hooks.js';
import type { DownloadFailure, FinalStatus, Identity, InstalledRunner, InterruptedBy, JobFacts, JobPrep, JobSpec, LogUploadOutcome } from '../services/domain.js';

export type { DownloadFailure, FinalStatus, Identity, InstalledRunner, InterruptedBy, JobFacts, JobPrep, JobSpec, LogUploadOutcome, TelemetryStatus } from '../services/domain.js';

export interface AgentInput {
  env: Env;
  /** Wall clock in ms. Tests pass the SimulatedClock's `now`. */
  now?: () => number;
  /** Seconds the machine had been up when the agent started (/proc/uptime): `bootstrap_boot_seconds`. */
  bootUptimeSeconds?: number;
}

/** Why a standby ended without a config. */
export type StandbyEndReason = 'sigterm' | 'deadline' | 'max_runtime' | 'panic';
/** Where a failure happened, so that reporting can choose the status. */
export type FailurePhase = 'config' | 'download' | 'registration' | 'runner' | 'panic';

export type StateName =
  | 'booting'
  | 'downloading'
  | 'registering'
  | 'running'
  | 'draining'
  | 'reporting'
  | 'terminating';

export interface AgentContext {
  now: () => number;
  startedAtMs: number;
  settings: Settings;
  /** Bad environment variables, each message naming one. */
  settingErrors: string[];
  identity?: Identity;
  jobSpec?: JobSpec;
  runner?: InstalledRunner;
  job: { name?: string; startedAt?: string; result?: string; listening: boolean };
  stop?: { reason: StopReason; atMs: number; detail: string; spotTime?: string };
  failure?: { phase: FailurePhase; message: string };
  runnerExit?: { exitCode: number | null; signal: string | null };
  /** Seconds spent in each top-level state. */
  timings: Partial<Record<StateName, number>>;
  current?: { state: StateName; enteredAtMs: number };
  memoryWarnings: number;
  /** The last MEMORY_LOW: told in the job's own log when the job runs (or starts) after it. */
  lastMemoryLow?: { atMs: number; availableMb: number; minAvailableMb: number };
  downloadAttempt: number;
  /** The wait the last retriable download failure asked for (Retry-After), if any. */
  retryAfterMs?: number;
  /** Log lines shipped / given up by the flush before reporting. */
  logs?: { shipped: number; dropped: number };
  telemetry: { startedSent: boolean; finalSent: boolean };
  termination: { requested: boolean; error?: string };
  panics: number;
  /** From the machine's input: /proc/uptime at agent start. */
  bootUptimeSeconds?: number;
  /** Standby polls so far, failed ones, consecutive throttled ones; the rate limit of their log lines. */
  standby: { polls: number; errors: number; throttled: number; suppressed: number; lastErrorLogMs?: number };
  /** Set when standby ended without a config: the lifecycle is over, with nothing to report. */
  standbyEnd?: { reason: StandbyEndReason; atMs: number };
  /** When the config was read. */
  configFoundAtMs?: number;
  /** The queue an unusable config named, to report it there. */
  salvagedQueueUrl?: string;
  /** The download started during standby. */
  prefetch: 'off' | 'running' | 'done' | 'failed';
  prefetchStartedAtMs?: number;
  prefetchMs?: number;
  prefetchError?: DownloadFailure;
  watchdogsStarted: boolean;
  /** The attempt each running retry loop is at (machines/agent.machine.ts retryLoop); absent when the loop is not running. */
  retries: Partial<Record<'startedTelemetry' | 'finalTelemetry' | 'terminate', number>>;
  /** When run.sh was spawned (the `started` message's started_at). */
  runnerSpawnedAtMs?: number;
  jobPrep?: JobPrep;
  jobFacts?: JobFacts;
  logUpload?: LogUploadOutcome;
  /** Who the job runs as, resolved once in registering. */
  runnerUser?: RunnerUser;
  /** The job hooks registering installed, when the runner user can run them. */
  jobHooks?: JobHookPaths;
  /** The S3 cache upload child (RUNS_FLEET_CACHE_UPLOAD=true after a GitHub download). */
  cacheUpload?: 'running' | 'uploaded' | 'failed' | 'abandoned';
}

/** What the lifecycle ended with; the command line turns it into an exit code. */
export interface AgentOutcome {
  /** `no_job`: standby ended without a config. */
  status: FinalStatus | 'no_job';
  standbyEnd?: StandbyEndReason;
  error?: string;
  interruptedBy?: InterruptedBy;
  terminationRequested: boolean;
  terminationError?: string;
  terminateEnabled: boolean;
  exitCode: 0 | 1;
}
