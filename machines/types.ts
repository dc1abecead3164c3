/**
 * Types shared by the agent machine, its actors and the command line.
 * Context holds no secret: credentials stay in the SecretVault service, and the
 * context only says which mode they are for.
 */
import type { Env, Settings } from '../services/settings.js';
import type { StopReason } from './events.js';

export interface AgentInput {
  env: Env;
  /** Wall clock in ms. Tests pass the SimulatedClock's `now`. */
  now?: () => number;
}

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
}

export interface InstalledRunner {
  dir: string;
  version: string;
  source: 'installed' | 's3' | 'github';
}

export type FinalStatus = 'success' | 'failure' | 'timeout' | 'interrupted' | 'bootstrap_failed';
export type TelemetryStatus = 'started' | FinalStatus;
export type InterruptedBy = 'sigterm' | 'spot' | 'disk_full';

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
  downloadAttempt: number;
  /** The wait the last retriable download failure asked for (Retry-After), if any. */
  retryAfterMs?: number;
  /** Log lines shipped / given up by the flush before reporting. */
  logs?: { shipped: number; dropped: number };
  telemetry: { startedSent: boolean; finalSent: boolean };
  termination: { requested: boolean; error?: string };
  panics: number;
}

/** What the lifecycle ended with; the command line turns it into an exit code. */
export interface AgentOutcome {
  status: FinalStatus;
  error?: string;
  interruptedBy?: InterruptedBy;
  terminationRequested: boolean;
  terminationError?: string;
  terminateEnabled: boolean;
  exitCode: 0 | 1;
}
