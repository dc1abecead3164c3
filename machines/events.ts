/**
 * Every event the agent machine handles from outside its invoked actors.
 * Watchdog actors (signals, spot poller, resource monitor), the runner process
 * and the crash handler send these; the machine decides what they mean per state.
 */

import type { Settings } from '../services/settings.js';
import type { DownloadFailure, Identity, InstalledRunner, JobSpec, JobCompletedEvent, JobStartedEvent, RunnerExitedEvent, RunnerFatalEvent, RunnerListeningEvent, RunnerSpawnedEvent } from '../services/domain.js';

export type { JobCompletedEvent, JobStartedEvent, RunnerEvent, RunnerExitedEvent, RunnerFatalEvent, RunnerListeningEvent, RunnerSpawnedEvent, RunnerCommand } from '../services/domain.js';

/** Why a job (or the boot) was stopped before its natural end. Kept for telemetry. */
export type StopReason = 'sigterm' | 'spot' | 'timeout' | 'idle' | 'disk_full';

/** The agent received SIGTERM or SIGINT (systemd stop, operator, instance shutdown). */
export interface SigtermEvent {
  type: 'SIGTERM';
  signal: 'SIGTERM' | 'SIGINT';
}

/** IMDS announced a spot interruption (`spot/instance-action`); `time` is when AWS will act. */
export interface SpotInterruptionEvent {
  type: 'SPOT_INTERRUPTION';
  action: string;
  time: string;
}

/** The max-runtime ceiling (from agent start) was reached. */
export interface TimeoutEvent {
  type: 'TIMEOUT';
}

/** The runner registered but no job started within the idle timeout. */
export interface IdleTimeoutEvent {
  type: 'IDLE_TIMEOUT';
}

/** Free space on the runner's filesystem fell below the configured minimum. */
export interface DiskFullEvent {
  type: 'DISK_FULL';
  freeMb: number;
  minFreeMb: number;
}

/** Available memory fell below the configured minimum: logged and counted, not a stop. */
export interface MemoryLowEvent {
  type: 'MEMORY_LOW';
  availableMb: number;
  minAvailableMb: number;
}

/** An uncaught exception or unhandled rejection inside the agent. */
export interface PanicEvent {
  type: 'PANIC';
  error: string;
  stack?: string;
}

/** The download started during standby got the runner (verified, extracted). */
export interface RunnerPrefetchedEvent {
  type: 'RUNNER_PREFETCHED';
  runner: InstalledRunner;
}

/** The download started during standby failed; downloading retries it or reports it. */
export interface PrefetchFailedEvent {
  type: 'PREFETCH_FAILED';
  failure: DownloadFailure;
}

/** The log shipper's answer to FLUSH_LOGS: what reached CloudWatch, what will not. */
export interface LogsFlushedEvent {
  type: 'LOGS_FLUSHED';
  shipped: number;
  dropped: number;
}

/** The S3 cache upload child ended (it never fails the lifecycle). */
export interface CacheUploadFinishedEvent {
  type: 'CACHE_UPLOAD_FINISHED';
  outcome: 'uploaded' | 'failed';
}

/** What the chart tells the log shipper's actor (actors/log-shipper.ts). */
export type LogShipperCommand =
  | { type: 'SHIP_LOGS'; settings: Settings; identity?: Identity; jobSpec?: JobSpec }
  | { type: 'FLUSH_LOGS'; timeoutMs: number; /** Queue the runner's `_diag` logs first (reporting's flush only). */ diagDir?: string };

export type AgentEvent =
  | SigtermEvent
  | SpotInterruptionEvent
  | TimeoutEvent
  | IdleTimeoutEvent
  | DiskFullEvent
  | MemoryLowEvent
  | PanicEvent
  | RunnerPrefetchedEvent
  | PrefetchFailedEvent
  | RunnerSpawnedEvent
  | RunnerListeningEvent
  | JobStartedEvent
  | JobCompletedEvent
  | RunnerExitedEvent
  | RunnerFatalEvent
  | LogsFlushedEvent
  | CacheUploadFinishedEvent;

/** Events that stop a job or a boot, and the reason each one records. */
export const STOP_EVENTS = {
  SIGTERM: 'sigterm',
  SPOT_INTERRUPTION: 'spot',
  TIMEOUT: 'timeout',
  IDLE_TIMEOUT: 'idle',
  DISK_FULL: 'disk_full',
} as const satisfies Record<string, StopReason>;

