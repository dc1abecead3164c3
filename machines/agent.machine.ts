/**
 * The runs-fleet agent as one explicit state machine (SPEC §1):
 *
 *   booting → downloading → registering → running → draining → reporting → terminating
 *
 * Every side effect is an actor named by string (see actor-contracts.ts); every
 * stop (SIGTERM, spot notice, max runtime, idle, full disk) and crash is an event.
 * Pure decisions (final status, telemetry message) live in outcome.ts.
 */
import { assign, enqueueActions, log, raise, sendTo, setup, stopChild, type DoneActorEvent } from 'xstate';
import { parseSettings, type Settings } from '../services/settings.js';
import { actorContracts } from './actor-contracts.js';
import { STOP_EVENTS, type AgentEvent, type StopReason } from './events.js';
import type { WatchdogInput } from './actor-contracts.js';
import { agentOutcome, deprecatedRunnerError, finalStatus, memoryNotice, queueUrl, runnerFatalError, stopNotice, telemetryMessage, timingsSoFar } from './outcome.js';
import type { AgentContext, AgentInput, FailurePhase, JobSpec, StateName, StandbyEndReason } from './types.js';

/** Download attempts before giving up (transient failures only). */
export const DOWNLOAD_ATTEMPTS = 3;
/** The longest Retry-After the agent honours before its next attempt. */
export const MAX_RETRY_AFTER_MS = 60_000;
/** Time kept after a spot notice for reporting and termination. */
export const SPOT_RESERVE_MS = 30_000;
/** Runner drain: how long after SIGKILL we still wait for the process to be reaped. */
export const KILL_WAIT_MS = 5_000;
/** Deadline of the cleanup step. */
export const CLEANUP_DEADLINE_MS = 10_000;
export const FINAL_FLUSH_MS = 3_000;
/** How long after its own timeout an actor that reports partial results gets before the machine moves on. */
export const BACKSTOP_MS = 1_000;
/** Standby polls (the orchestrator's cmd/agent/standby.go): every 2 s for the first 15 polls (~30 s)… */
export const STANDBY_FAST_POLL_MS = 2_000;
export const STANDBY_FAST_POLLS = 15;
/** …then every 5 s ±20 % jitter, so that idle spares do not poll in lockstep. */
export const STANDBY_SLOW_POLL_MS = 5_000;
export const STANDBY_JITTER = 0.2;
/** Throttled polls back off further: doubling from the slow poll up to this. */
export const STANDBY_THROTTLED_MAX_MS = 60_000;
/** A failing SSM read is logged at most this often while waiting (the count of the others with it). */
export const POLL_ERROR_LOG_INTERVAL_MS = 60_000;
/** Preparing the job (the buildx cache `.env`, the tool-cache snapshot) may take this long. */
export const PREPARE_DEADLINE_MS = 10_000;
/** Keeping the job off IMDS (a few nft/iptables calls and a probe) may take this long. */
export const ISOLATE_DEADLINE_MS = 10_000;
/** config.sh talks to GitHub a few times; minutes means it is stuck (JIT mode runs nothing). */
export const REGISTER_DEADLINE_MS = 5 * 60_000;
/** Learning the instance id and region (the environment, else IMDSv2 with its own short timeouts). */
export const IDENTITY_DEADLINE_MS = 60_000;
/** Reading what the job left (tool-cache markers, the buildx shim's outcome) may take this long. */
export const INSPECT_DEADLINE_MS = 10_000;
/** The runner logs' upload to S3 (the orchestrator's logShipTimeout). */
export const RUNNER_LOGS_BUDGET_MS = 60_000;
/** After a spot notice, what the runner logs' upload leaves of the time before AWS acts, for the report and the termination. */
export const SPOT_REPORT_RESERVE_MS = 20_000;

/** The chart's retry loops (`attempt → backoff`), each with its own bound and named delay. */
export type RetryLoop = 'startedTelemetry' | 'finalTelemetry' | 'terminate';
export const RETRY_POLICY: Record<RetryLoop, { attempts: number; baseMs: number; maxMs: number }> = {
  /** The `started` confirmation: a few tries while the job runs anyway. */
  startedTelemetry: { attempts: 3, baseMs: 1_000, maxMs: 8_000 },
  /** The final report: bounded by attempts and by the report deadline (RUNS_FLEET_REPORT_TIMEOUT_SECONDS). */
  finalTelemetry: { attempts: 4, baseMs: 1_000, maxMs: 8_000 },
  /** TerminateInstances: bounded by attempts and by RUNS_FLEET_TERMINATE_TIMEOUT_SECONDS. */
  terminate: { attempts: 3, baseMs: 1_000, maxMs: 4_000 },
};
/** One SendMessage attempt's own timeout (a queue that does not answer is a failed attempt). */
export const TELEMETRY_ATTEMPT_TIMEOUT_MS = 10_000;

/** The delay before attempt `attempt + 1` of `loop`: capped exponential, with jitter (half to full). */
export function retryBackoffMs(loop: RetryLoop, attempt: number, random: () => number = Math.random): number {
  const { baseMs, maxMs } = RETRY_POLICY[loop];
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1)) * (0.5 + random() / 2);
}

const errorText = (event: unknown): string => {
  const error = (event as { error?: unknown }).error;
  return error instanceof Error ? error.message : String(error);
};
const isRetriable = (event: unknown): boolean =>
  Boolean(((event as { error?: { retriable?: boolean } }).error as { retriable?: boolean } | undefined)?.retriable);
/** The kind the SSM config store gave its error (services/aws/ssm-config.ts): not-found, read-error or unusable. */
const configErrorKind = (event: unknown): string | undefined => ((event as { error?: { kind?: string } }).error as { kind?: string } | undefined)?.kind;

const STOP_DETAILS: Record<StopReason, (event: AgentEvent, ctx: AgentContext) => string> = {
  sigterm: (e) => `agent received ${(e as { signal?: string }).signal ?? 'SIGTERM'}`,
  spot: (e) => `spot interruption notice: ${(e as { action?: string }).action} at ${(e as { time?: string }).time}`,
  timeout: (_, ctx) => `max runtime of ${ctx.settings.maxRuntimeMs / 60_000} minutes reached`,
  idle: (_, ctx) => `no job started within the idle timeout of ${ctx.settings.idleTimeoutMs / 60_000} minutes`,
  disk_full: (e) =>
    `disk full: ${(e as { freeMb?: number }).freeMb} MB free on the runner's filesystem, below the minimum of ${(e as { minFreeMb?: number }).minFreeMb} MB`,
};

/** The steps before the final message give way to it: out of time, or crashed, report anyway. */
const REPORT_ANYWAY = {
  TIMEOUT: { target: 'sending', description: 'Out of time: skip this step, the report matters more.' },
  PANIC: { target: 'sending', actions: 'countPanic', description: 'A crash: report anyway.' },
} as const;

const agentSetup = setup({
  types: {
    context: {} as AgentContext,
    events: {} as AgentEvent,
    input: {} as AgentInput,
  },
  actors: actorContracts,
  guards: {
    /** Bad environment variables were found while booting. */
    hasSettingErrors: ({ context }) => context.settingErrors.length > 0,
    /** The failed download may succeed on another attempt, and attempts are left. */
    canRetryDownload: ({ context, event }) => isRetriable(event) && context.downloadAttempt < DOWNLOAD_ATTEMPTS,
    /** The runner process already exited: nothing to drain. */
    runnerGone: ({ context }) => context.runnerExit !== undefined,
    /** The lifecycle may call TerminateInstances on this instance. */
    terminateDisabled: ({ context }) => !context.settings.terminate,
    /** Without an instance id there is nothing to terminate: exit non-zero so systemd powers off. */
    identityUnknown: ({ context }) => context.identity === undefined,
    /** A stop (SIGTERM, the deadline, max runtime) came while a poll was reading. */
    standbyStopRequested: ({ context }) => context.standbyEnd !== undefined,
    /** The config was written but cannot be used (not JSON, no credential, a bad field): report it. */
    configUnusable: ({ event }) => configErrorKind(event) === 'unusable',
    /** The prefetch got the runner while the agent waited. */
    prefetchDone: ({ context }) => context.prefetch === 'done' && context.runner !== undefined,
    /** The prefetch is still downloading. */
    prefetchRunning: ({ context }) => context.prefetch === 'running',
    /** The prefetch failed in a way another attempt may fix. */
    prefetchFailedRetriable: ({ context }) =>
      context.prefetch === 'failed' && Boolean(context.prefetchError?.retriable) && context.downloadAttempt < DOWNLOAD_ATTEMPTS,
    /** The prefetch failed for good (404, checksum mismatch). */
    prefetchFailed: ({ context }) => context.prefetch === 'failed',
    /** The failed attempt may succeed if tried again, and the loop has attempts left. */
    canRetry: ({ context, event }, params: { loop: RetryLoop }) =>
      isRetriable(event) && (context.retries[params.loop] ?? 1) < RETRY_POLICY[params.loop].attempts,
  },
  delays: {
    /** Hard ceiling from agent start (RUNS_FLEET_MAX_RUNTIME_MINUTES). */
    maxRuntime: ({ context }) => Math.max(0, context.startedAtMs + context.settings.maxRuntimeMs - context.now()),
    /** Standby gives up on the config (RUNS_FLEET_STANDBY_DEADLINE_MINUTES), from agent start like the orchestrator's agent. */
    standbyDeadline: ({ context }) => Math.max(0, context.startedAtMs + context.settings.standbyDeadlineMs - context.now()),
    /** Next standby poll: 2 s at first, then 5 s ±20 %; throttled polls double up to 60 s. */
    standbyPoll: ({ context }) => standbyPollMs(context.standby.polls - 1, context.standby.throttled),
    /** Registered but no job started (RUNS_FLEET_IDLE_TIMEOUT_MINUTES). */
    idleTimeout: ({ context }) => context.settings.idleTimeoutMs,
    /** After the job's result line, run.sh's time to exit by itself (RUNS_FLEET_RESULT_EXIT_GRACE_SECONDS). */
    resultExitGrace: ({ context }) => context.settings.resultExitGraceMs,
    /**
     * Between download attempts: what GitHub asked for (Retry-After / x-ratelimit-reset, capped),
     * else capped exponential backoff with jitter: ~1 s, ~2 s, ≤ 8 s.
     */
    downloadBackoff: ({ context }) =>
      context.retryAfterMs !== undefined
        ? Math.min(context.retryAfterMs, MAX_RETRY_AFTER_MS)
        : Math.min(8_000, 1_000 * 2 ** (context.downloadAttempt - 1)) * (0.5 + Math.random() / 2),
    /** From SIGTERM to SIGKILL of the runner (RUNS_FLEET_DRAIN_GRACE_SECONDS; less after a spot notice). */
    drainGrace: ({ context }) => drainGraceMs(context),
    /** From SIGKILL until the runner's exit is seen; after this it is abandoned (and killed again on leaving). */
    killWait: KILL_WAIT_MS,
    /** Telemetry may not hold the instance longer than this (RUNS_FLEET_REPORT_TIMEOUT_SECONDS). */
    reportDeadline: ({ context }) => context.settings.reportTimeoutMs,
    cleanupDeadline: CLEANUP_DEADLINE_MS,
    prepareDeadline: PREPARE_DEADLINE_MS,
    isolateDeadline: ISOLATE_DEADLINE_MS,
    registerDeadline: REGISTER_DEADLINE_MS,
    identityDeadline: IDENTITY_DEADLINE_MS,
    inspectDeadline: INSPECT_DEADLINE_MS,
    /** Backstop of the runner logs' upload, which stops itself at its budget. */
    runnerLogsDeadline: ({ context }) => runnerLogsBudgetMs(context) + BACKSTOP_MS,
    /** The last flush only carries the agent's closing lines: the job's log was flushed in reporting. */
    finalFlushDeadline: ({ context }) => finalFlushMs(context) + BACKSTOP_MS,
    /**
     * Backstop of the log flush: the flush itself stops at RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS and
     * reports what it dropped; this fires only if it does not return within a second after that.
     */
    flushDeadline: ({ context }) => context.settings.logFlushTimeoutMs + BACKSTOP_MS,
    /** TerminateInstances with its retries (RUNS_FLEET_TERMINATE_TIMEOUT_SECONDS). */
    terminateDeadline: ({ context }) => context.settings.terminateTimeoutMs,
    /** The retry loops' backoffs (RETRY_POLICY). */
    startedTelemetryBackoff: ({ context }) => retryBackoffMs('startedTelemetry', context.retries.startedTelemetry ?? 1),
    finalTelemetryBackoff: ({ context }) => retryBackoffMs('finalTelemetry', context.retries.finalTelemetry ?? 1),
    terminateBackoff: ({ context }) => retryBackoffMs('terminate', context.retries.terminate ?? 1),
  },
  actions: {
    enterState: assign(({ context }, params: { state: StateName }) => ({
      current: { state: params.state, enteredAtMs: context.now() },
    })),
    leaveState: assign(({ context }) => {
      if (!context.current) return {};
      const { state, enteredAtMs } = context.current;
      // A wall clock that stepped back must not make a negative duration.
      const spent = Math.max(0, context.now() - enteredAtMs) / 1000;
      return {
        timings: { ...context.timings, [state]: Math.round(((context.timings[state] ?? 0) + spent) * 100) / 100 },
        current: undefined,
      };
    }),
    recordStop: assign(({ context, event }) => {
      if (context.stop) return {};
      const reason = STOP_EVENTS[event.type as keyof typeof STOP_EVENTS];
      return {
        stop: {
          reason,
          atMs: context.now(),
          detail: STOP_DETAILS[reason](event, context),
          spotTime: event.type === 'SPOT_INTERRUPTION' ? event.time : undefined,
        },
      };
    }),
    recordFailure: assign(({ context, event }, params: { phase: FailurePhase }) =>
      context.failure ? {} : { failure: { phase: params.phase, message: errorText(event) } },
    ),
    /** A state's deadline passed before its actor finished. */
    recordDeadline: assign(({ context }, params: { phase: FailurePhase; what: string; ms: number }) =>
      context.failure ? {} : { failure: { phase: params.phase, message: `${params.what} did not finish within ${params.ms / 1000} s` } },
    ),
    recordSettingErrors: assign(({ context }) => ({
      failure: context.failure ?? { phase: 'config' as const, message: `invalid configuration: ${context.settingErrors.join('; ')}` },
    })),
    recordPanic: assign(({ context, event }) => ({
      panics: context.panics + 1,
      failure: { phase: 'panic' as const, message: `agent crashed: ${(event as { error?: string }).error}` },
    })),
    countPanic: assign(({ context }) => ({ panics: context.panics + 1 })),
    countMemoryWarning: assign(({ context, event }) => ({
      memoryWarnings: context.memoryWarnings + 1,
      lastMemoryLow: event.type === 'MEMORY_LOW' ? { atMs: context.now(), availableMb: event.availableMb, minAvailableMb: event.minAvailableMb } : context.lastMemoryLow,
    })),
    countDownloadAttempt: assign(({ context, event }) => ({
      downloadAttempt: context.downloadAttempt + 1,
      retryAfterMs: (event as { error?: { retryAfterMs?: number } }).error?.retryAfterMs,
    })),
    /** The prefetch's failure counts as the first attempt. */
    countPrefetchAttempt: assign(({ context }) => ({
      downloadAttempt: context.downloadAttempt + 1,
      retryAfterMs: context.prefetchError?.retryAfterMs,
    })),
    recordPrefetchFailure: assign(({ context }) =>
      context.failure ? {} : { failure: { phase: 'download' as const, message: context.prefetchError?.message ?? 'the runner download failed' } },
    ),
    /** Watchdogs and the log shipper: once the lifecycle is past standby (idempotent). */
    startWatchdogs: enqueueActions(({ context, enqueue }) => {
      if (context.watchdogsStarted) return;
      enqueue.assign({ watchdogsStarted: true });
      const input: WatchdogInput = { settings: context.settings, identity: context.identity, jobSpec: context.jobSpec };
      enqueue.sendTo('logShipper', { type: 'SHIP_LOGS', ...input });
      enqueue.spawnChild('spotWatcher', { id: 'spotWatcher', input });
      enqueue.spawnChild('resourceMonitor', { id: 'resourceMonitor', input });
    }),
    /** The runner's download needs nothing from the config: start it while waiting. */
    startPrefetch: enqueueActions(({ context, enqueue }) => {
      // Only when allowed (RUNS_FLEET_PREFETCH_RUNNER) and the environment is valid (else booting ends in reporting).
      if (!context.settings.prefetchRunner || context.settingErrors.length > 0 || context.prefetch !== 'off') return;
      enqueue.assign({ prefetch: 'running' as const, prefetchStartedAtMs: context.now() });
      enqueue.spawnChild('prefetchRunner', { id: 'prefetch', input: { settings: context.settings, attempt: 1 } });
    }),
    recordPrefetched: assign(({ context, event }) => ({
      prefetch: 'done' as const,
      runner: event.type === 'RUNNER_PREFETCHED' ? event.runner : context.runner,
      prefetchMs: context.prefetchStartedAtMs === undefined ? undefined : context.now() - context.prefetchStartedAtMs,
    })),
    recordPrefetchError: assign(({ event }) => ({
      prefetch: 'failed' as const,
      prefetchError: event.type === 'PREFETCH_FAILED' ? event.failure : { message: 'the runner download failed', retriable: false },
    })),
    recordConfig: assign(({ context, event }) => ({
      jobSpec: (event as unknown as DoneActorEvent<JobSpec>).output,
      configFoundAtMs: context.now(),
    })),
    /** An unusable config: the failure, and the queue it named (to report it there). */
    recordUnusableConfig: assign(({ context, event }) => ({
      failure: context.failure ?? { phase: 'config' as const, message: errorText(event) },
      salvagedQueueUrl: ((event as { error?: { queueUrl?: string } }).error as { queueUrl?: string } | undefined)?.queueUrl,
    })),
    /** A poll found nothing or failed: count it; a failure is logged at most once a minute. */
    notePollFailure: enqueueActions(({ context, event, enqueue }) => {
      const error = (event as { error?: { kind?: string; throttled?: boolean } }).error;
      const now = context.now();
      const s = context.standby;
      const next = { ...s, polls: s.polls + 1, throttled: error?.throttled ? s.throttled + 1 : 0 };
      if (configErrorKind(event) !== 'not-found' || /credential/.test(errorText(event))) {
        next.errors = s.errors + 1;
        if (s.lastErrorLogMs === undefined || now - s.lastErrorLogMs >= POLL_ERROR_LOG_INTERVAL_MS) {
          const more = s.suppressed > 0 ? ` (${s.suppressed} more since the last one)` : '';
          enqueue(log(`standby: ${errorText(event)}; polling on${more}`));
          next.lastErrorLogMs = now;
          next.suppressed = 0;
        } else next.suppressed = s.suppressed + 1;
      }
      enqueue.assign({ standby: next });
    }),
    endStandby: assign(({ context }, params: { reason: StandbyEndReason }) => ({
      standbyEnd: context.standbyEnd ?? { reason: params.reason, atMs: context.now() },
    })),
    /** The standby's stop, once its poll found a config after all: a stop like any other, reported. */
    reportStandbyStop: assign(({ context }) => {
      const end = context.standbyEnd;
      if (!end || end.reason === 'panic') return { standbyEnd: undefined };
      const reason = end.reason === 'sigterm' ? ('sigterm' as const) : ('timeout' as const);
      const detail = end.reason === 'sigterm' ? 'agent received SIGTERM while reading the runner config' : end.reason === 'deadline' ? 'the standby deadline passed while reading the runner config' : `max runtime of ${context.settings.maxRuntimeMs / 60_000} minutes reached`;
      return { standbyEnd: undefined, stop: context.stop ?? { reason, atMs: end.atMs, detail } };
    }),
    markRunnerSpawned: assign(({ context }) => ({ runnerSpawnedAtMs: context.runnerSpawnedAtMs ?? context.now() })),
    markJobListening: assign(({ context }) => ({ job: { ...context.job, listening: true } })),
    markJobStarted: assign(({ context, event }) =>
      event.type === 'JOB_STARTED' ? { job: { ...context.job, name: event.jobName, startedAt: event.at } } : {},
    ),
    markJobCompleted: assign(({ context, event }) =>
      event.type === 'JOB_COMPLETED' ? { job: { ...context.job, name: event.jobName, result: event.result } } : {},
    ),
    markRunnerExited: assign(({ context, event }) => {
      if (event.type !== 'RUNNER_EXITED') return {};
      const runnerExit = { exitCode: event.exitCode, signal: event.signal };
      // 7 = a version GitHub refuses (ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE=1, run.sh v2.333.0+).
      if (event.exitCode === 7 && !context.failure && context.job.startedAt === undefined) {
        return { runnerExit, failure: { phase: 'runner' as const, message: deprecatedRunnerError(context.runner?.version) } };
      }
      return { runnerExit };
    }),
    /** A runner line after which it will never get its job: the boot failed, with that line. */
    recordRunnerFatal: assign(({ context, event }) =>
      event.type !== 'RUNNER_FATAL' || context.failure
        ? {}
        : { failure: { phase: 'runner' as const, message: runnerFatalError(event.reason, event.line, context.runner?.version) } },
    ),
    markStartedSent: assign(({ context, event }) => ({
      telemetry: { ...context.telemetry, startedSent: Boolean((event as { output?: { sent?: boolean } }).output?.sent) },
    })),
    /** A GitHub download kept for the cache: upload it in a child that lives until cleanup at the latest. */
    startCacheUpload: enqueueActions(({ context, enqueue }) => {
      const archive = context.runner?.cacheArchive;
      if (!archive || context.cacheUpload !== undefined) return;
      enqueue.assign({ cacheUpload: 'running' as const });
      enqueue.spawnChild('uploadRunnerCache', { id: 'cacheUpload', input: { settings: context.settings, archive } });
    }),
    noteCacheUpload: enqueueActions(({ context, enqueue }) => {
      if (context.cacheUpload === 'running') enqueue(log('the S3 cache upload is still running: it has until cleanup'));
    }),
    recordCacheUpload: assign(({ event }) => (event.type === 'CACHE_UPLOAD_FINISHED' ? { cacheUpload: event.outcome } : {})),
    /** Cleanup is the upload's end: whatever is not done by then is abandoned (and said so). */
    endCacheUpload: enqueueActions(({ context, enqueue }) => {
      if (context.cacheUpload !== 'running') return;
      enqueue(stopChild('cacheUpload'));
      enqueue.assign({ cacheUpload: 'abandoned' as const });
      enqueue(log('the S3 cache upload had not finished by cleanup: abandoned (the next instance downloads from GitHub)'));
    }),
    recordLogCounts: assign(({ event }) => (event.type === 'LOGS_FLUSHED' ? { logs: { shipped: event.shipped, dropped: event.dropped } } : {})),
    markFinalSent: assign(({ context }) => ({ telemetry: { ...context.telemetry, finalSent: true } })),
    recordTelemetryGiveUp: log(({ event }) => `telemetry not sent: ${errorText(event)}`),
    markTerminationRequested: assign(({ context }) => ({ termination: { ...context.termination, requested: true } })),
    recordTerminationError: assign(({ context, event }) => ({
      termination: { ...context.termination, error: context.identity ? errorText(event) : 'instance id unknown' },
    })),
    startRetryLoop: assign(({ context }, params: { loop: RetryLoop }) => ({ retries: { ...context.retries, [params.loop]: 1 } })),
    endRetryLoop: assign(({ context }, params: { loop: RetryLoop }) => {
      const { [params.loop]: _, ...rest } = context.retries;
      return { retries: rest };
    }),
    /** A retriable failure: count it, and say so (every retry is visible in the agent's log). */
    countRetry: enqueueActions(({ context, event, enqueue }, params: { loop: RetryLoop }) => {
      const attempt = context.retries[params.loop] ?? 1;
      enqueue(log(`${params.loop}: attempt ${attempt} of ${RETRY_POLICY[params.loop].attempts} failed, retrying: ${errorText(event)}`));
      enqueue.assign({ retries: { ...context.retries, [params.loop]: attempt + 1 } });
    }),
    /** SIGTERM to run.sh, after the stop's reason was put where the job's completed hook prints it. */
    signalRunner: enqueueActions(({ context, enqueue }) => {
      if (!context.runnerExit) enqueue.sendTo('runner', { type: 'STOP', notice: context.job.startedAt !== undefined ? stopNotice(context) : undefined });
    }),
    /** Low memory, during the job or before it (the monitor tells a crossing once), for the job's own log too. */
    noteMemoryLow: enqueueActions(({ context, enqueue }) => {
      const low = context.lastMemoryLow;
      if (low && context.job.startedAt !== undefined) {
        enqueue.sendTo('runner', { type: 'NOTE', notice: memoryNotice(low.atMs, low.availableMb, low.minAvailableMb) });
      }
    }),
    killRunner: enqueueActions(({ context, enqueue }) => {
      if (!context.runnerExit) enqueue.sendTo('runner', { type: 'KILL' });
    }),
  },
});

/**
 * One retry loop, the same everywhere: `attempt` invokes the actor once; a retriable failure with
 * attempts left goes to `backoff` (the loop's named, capped, jittered delay), then back; anything
 * else is `onGiveUp`. The attempt count lives in context only while the loop runs.
 */
function retryLoop(
  loop: RetryLoop,
  config: {
    description: string;
    /** The one attempt: src, input, onDone (its onError is the loop's). */
    attempt: { src: keyof typeof actorContracts; input: unknown; onDone: unknown };
    /** A failure that is not retriable, or the last attempt's. */
    onGiveUp: AgentTransition;
    /** The loop's own deadline and whatever else the compound state takes. */
    after?: AgentStateConfig['after'];
    on?: AgentStateConfig['on'];
  },
) {
  return agentSetup.createStateConfig({
    description: config.description,
    entry: { type: 'startRetryLoop', params: { loop } },
    exit: { type: 'endRetryLoop', params: { loop } },
    ...(config.after ? { after: config.after } : {}),
    ...(config.on ? { on: config.on } : {}),
    initial: 'attempt',
    states: {
      attempt: {
        invoke: {
          ...config.attempt,
          onError: [
            {
              guard: { type: 'canRetry', params: { loop } },
              target: 'backoff',
              actions: { type: 'countRetry', params: { loop } },
              description: 'Retriable (throttling, 5xx, no answer) and attempts left.',
            },
            config.onGiveUp,
          ],
        },
      } as unknown as AgentStateConfig,
      backoff: {
        description: `Capped, jittered backoff; at most ${RETRY_POLICY[loop].attempts} attempts in all.`,
        after: { [`${loop}Backoff`]: 'attempt' },
      },
    },
  });
}
type AgentStateConfig = Parameters<typeof agentSetup.createStateConfig>[0];
type AgentTransition = Exclude<NonNullable<Parameters<typeof agentSetup.createStateConfig>[0]['always']>, string | readonly unknown[]>;

export const agentMachine = agentSetup.createMachine({
  id: 'agent',
  description: 'One ephemeral GitHub Actions job on one EC2 instance, from boot to self-termination.',
  /** What the lifecycle ended with (status, exit code, termination): the command line's only input. */
  output: ({ context }) => agentOutcome(context),
  context: ({ input }) => {
    const now = input.now ?? Date.now;
    const { settings, errors } = parseSettings(input.env);
    return {
      now,
      startedAtMs: now(),
      settings,
      settingErrors: errors,
      downloadAttempt: 1,
      job: { listening: false },
      timings: {},
      memoryWarnings: 0,
      telemetry: { startedSent: false, finalSent: false },
      termination: { requested: false },
      panics: 0,
      standby: { polls: 0, errors: 0, throttled: 0, suppressed: 0 },
      prefetch: 'off',
      watchdogsStarted: false,
      retries: {},
      bootUptimeSeconds: input.bootUptimeSeconds,
    };
  },
  invoke: [
    { src: 'processWatcher', id: 'processWatcher' },
    { src: 'logShipper', id: 'logShipper', input: ({ context }) => ({ settings: context.settings }) },
  ],
  after: {
    maxRuntime: { actions: raise({ type: 'TIMEOUT' }), description: 'The hard ceiling, from agent start.' },
  },
  on: {
    SIGTERM: { target: '.reporting', actions: 'recordStop', description: 'Nothing runs yet: stop booting and report.' },
    SPOT_INTERRUPTION: { target: '.reporting', actions: 'recordStop', description: 'Spot notice before the job: report and go.' },
    TIMEOUT: { target: '.reporting', actions: 'recordStop', description: 'Max runtime reached before the job ran.' },
    DISK_FULL: { target: '.reporting', actions: 'recordStop', description: 'Disk full before the job ran.' },
    PANIC: { target: '.reporting', actions: 'recordPanic', description: 'A crash: report it, then terminate.' },
    MEMORY_LOW: { actions: ['countMemoryWarning', log('memory low')], description: 'Counted and reported, never a stop.' },
    CACHE_UPLOAD_FINISHED: { actions: 'recordCacheUpload', description: 'The S3 cache upload child ended (uploaded or not: never a stop).' },
  },
  initial: 'booting',
  states: {
    booting: {
      description: 'Read the environment, learn identity, then wait for the runner config in SSM (standby).',
      entry: { type: 'enterState', params: { state: 'booting' } },
      exit: 'leaveState',
      on: {
        SIGTERM: {
          target: 'standbyEnded',
          actions: { type: 'endStandby', params: { reason: 'sigterm' } },
          description: 'No job was given: a warm-pool stop. Exit 0, nothing reported, nothing terminated.',
        },
        TIMEOUT: {
          target: 'standbyEnded',
          actions: { type: 'endStandby', params: { reason: 'max_runtime' } },
          description: 'Max runtime before any config: no job was given.',
        },
        PANIC: {
          target: 'standbyEnded',
          actions: [{ type: 'endStandby', params: { reason: 'panic' } }, 'countPanic'],
          description: 'A crash before any job: nothing to report; exit 1 and let systemd power off.',
        },
        RUNNER_PREFETCHED: { actions: 'recordPrefetched', description: 'The runner is ready before the config.' },
        PREFETCH_FAILED: { actions: 'recordPrefetchError', description: 'Kept for downloading to retry.' },
      },
      initial: 'identity',
      states: {
        identity: {
          description: 'Instance id and region: from the environment, else IMDSv2.',
          invoke: {
            src: 'resolveIdentity',
            input: ({ context }) => ({ settings: context.settings }),
            onDone: {
              target: 'standby',
              // From here on every actor's settings carry the resolved instance id and region.
              actions: assign({
                identity: ({ event }) => event.output,
                settings: ({ context, event }) => ({ ...context.settings, instanceId: event.output.instanceId, region: event.output.region }),
              }),
            },
            onError: { target: '#agent.reporting', actions: { type: 'recordFailure', params: { phase: 'config' } } },
          },
          after: {
            identityDeadline: {
              target: '#agent.reporting',
              actions: { type: 'recordDeadline', params: { phase: 'config', what: 'learning the instance id and region', ms: IDENTITY_DEADLINE_MS } },
            },
          },
        },
        standby: {
          description:
            'Poll SSM until the orchestrator writes the config (after launch, or when a warm-pool spare is assigned); download the runner meanwhile.',
          entry: ['startPrefetch', log(({ context }) => `standby: waiting for the runner config (deadline in ${Math.round(context.settings.standbyDeadlineMs / 1000)} s from start)`)],
          initial: 'polling',
          states: {
            polling: {
              description: 'One read of …/config and …/credential, each call with its own timeout.',
              invoke: {
                src: 'readRunnerConfig',
                input: ({ context }) => ({ settings: context.settings, identity: context.identity! }),
                onDone: [
                  {
                    guard: 'standbyStopRequested',
                    target: '#agent.reporting',
                    actions: ['recordConfig', 'reportStandbyStop'],
                    description: 'The stop came while this poll read (and deleted) the config: report it, so the job is requeued.',
                  },
                  { target: '#agent.booting.validated', actions: 'recordConfig' },
                ],
                onError: [
                  { guard: 'standbyStopRequested', target: '#agent.standbyEnded', description: 'Stopped, and no config came.' },
                  {
                    guard: 'configUnusable',
                    target: '#agent.reporting',
                    actions: 'recordUnusableConfig',
                    description: 'Written but unusable: report it (bootstrap_failed) and terminate.',
                  },
                  { target: 'waiting', actions: 'notePollFailure', description: 'Not there yet, or SSM failed: poll again.' },
                ],
              },
              // A stop during a poll lets the poll finish (within its SSM timeouts): it may already have
              // taken the config out of SSM, and then the job must be reported, not dropped.
              on: {
                SIGTERM: { actions: { type: 'endStandby', params: { reason: 'sigterm' } }, description: 'Let the poll finish first.' },
                TIMEOUT: { actions: { type: 'endStandby', params: { reason: 'max_runtime' } }, description: 'Let the poll finish first.' },
              },
              after: { standbyDeadline: { actions: { type: 'endStandby', params: { reason: 'deadline' } }, description: 'Let the poll finish first.' } },
            },
            waiting: {
              description: 'The named poll delay: fast, then slow with jitter, longer while throttled.',
              after: {
                standbyDeadline: {
                  target: '#agent.standbyEnded',
                  actions: { type: 'endStandby', params: { reason: 'deadline' } },
                  description: 'No config by the standby deadline: exit 0, nothing reported.',
                },
                standbyPoll: 'polling',
              },
            },
          },
        },
        validated: {
          description: 'Bad environment variables end the boot now that the queue is known.',
          always: [
            { guard: 'hasSettingErrors', target: '#agent.reporting', actions: 'recordSettingErrors' },
            { target: '#agent.downloading' },
          ],
        },
      },
    },

    standbyEnded: {
      type: 'final',
      description: 'Standby ended without a config (SIGTERM, deadline): exit 0, no telemetry, no TerminateInstances.',
      entry: [stopChild('prefetch'), log(({ context }) => `standby ended without a runner config (${context.standbyEnd?.reason})`)],
    },

    downloading: {
      description: 'Get the runner: installed, S3 cache or GitHub Releases; verified and extracted.',
      entry: [{ type: 'enterState', params: { state: 'downloading' } }, 'startWatchdogs'],
      exit: 'leaveState',
      initial: 'pending',
      states: {
        pending: {
          description: 'Use what the prefetch got while waiting, wait for it, or download now.',
          always: [
            { guard: 'prefetchDone', target: '#agent.registering', description: 'The runner was ready before the config.' },
            { guard: 'prefetchRunning', target: 'awaitingPrefetch' },
            { guard: 'prefetchFailedRetriable', target: 'backoff', actions: 'countPrefetchAttempt', description: 'The prefetch failed transiently.' },
            { guard: 'prefetchFailed', target: '#agent.reporting', actions: 'recordPrefetchFailure', description: 'The prefetch failed for good.' },
            { target: 'attempt' },
          ],
        },
        awaitingPrefetch: {
          description: 'The download started during standby is still running.',
          on: {
            RUNNER_PREFETCHED: { target: '#agent.registering', actions: 'recordPrefetched' },
            PREFETCH_FAILED: { target: 'pending', actions: 'recordPrefetchError', description: 'Retried or reported as any failed attempt.' },
          },
        },
        attempt: {
          invoke: {
            src: 'downloadRunner',
            input: ({ context }) => ({ settings: context.settings, attempt: context.downloadAttempt }),
            onDone: { target: '#agent.registering', actions: assign({ runner: ({ event }) => event.output }) },
            onError: [
              {
                guard: 'canRetryDownload',
                target: 'backoff',
                actions: ['countDownloadAttempt', log(({ event }) => `download failed, retrying: ${errorText(event)}`)],
                description: 'Transient failure (reset, 5xx, rate limit): wait, then try again.',
              },
              {
                target: '#agent.reporting',
                actions: { type: 'recordFailure', params: { phase: 'download' } },
                description: 'Terminal failure (404, checksum mismatch) or attempts exhausted.',
              },
            ],
          },
        },
        backoff: {
          description: 'Capped, jittered exponential backoff before the next attempt.',
          after: { downloadBackoff: 'attempt' },
        },
      },
    },

    registering: {
      description: "Prepare the runner's identity: JIT needs nothing; a registration token runs config.sh. Then prepare the job.",
      entry: [{ type: 'enterState', params: { state: 'registering' } }, 'startCacheUpload'],
      exit: 'leaveState',
      initial: 'resolvingUser',
      states: {
        resolvingUser: {
          description: 'Who the job runs as: resolved once, carried in context to every step after.',
          invoke: {
            src: 'resolveRunnerUser',
            input: ({ context }) => ({ settings: context.settings }),
            onDone: { target: 'isolatingJob', actions: assign({ runnerUser: ({ event }) => event.output }) },
            onError: { target: '#agent.reporting', actions: { type: 'recordFailure', params: { phase: 'registration' } } },
          },
          after: {
            isolateDeadline: {
              target: '#agent.reporting',
              actions: { type: 'recordDeadline', params: { phase: 'registration', what: 'resolving the runner user', ms: ISOLATE_DEADLINE_MS } },
            },
          },
        },
        isolatingJob: {
          description: "Before anything runs as the runner user: its uid cannot reach IMDS, so the job has no instance credentials.",
          invoke: {
            src: 'isolateJob',
            input: ({ context }) => ({ settings: context.settings, user: context.runnerUser! }),
            onDone: { target: 'registeringRunner' },
            onError: {
              target: '#agent.reporting',
              actions: { type: 'recordFailure', params: { phase: 'registration' } },
              description: 'Fail closed: no job with the instance role in reach (unless RUNS_FLEET_JOB_IMDS=allow).',
            },
          },
          after: {
            isolateDeadline: {
              target: '#agent.reporting',
              actions: { type: 'recordDeadline', params: { phase: 'registration', what: 'keeping the job off IMDS', ms: ISOLATE_DEADLINE_MS } },
            },
          },
        },
        registeringRunner: {
          invoke: {
            src: 'registerRunner',
            input: ({ context }) => ({ settings: context.settings, jobSpec: context.jobSpec!, runner: context.runner!, user: context.runnerUser! }),
            onDone: { target: 'preparingJob', actions: assign({ jobHooks: ({ event }) => event.output?.hooks }) },
            onError: { target: '#agent.reporting', actions: { type: 'recordFailure', params: { phase: 'registration' } } },
          },
          after: {
            registerDeadline: {
              target: '#agent.reporting',
              actions: { type: 'recordDeadline', params: { phase: 'registration', what: 'config.sh', ms: REGISTER_DEADLINE_MS } },
              description: 'A stuck config.sh: leaving the state cancels it (its whole session).',
            },
          },
        },
        preparingJob: {
          description: "The buildx cache shim's variables into the runner's .env; a snapshot of the tool cache.",
          invoke: {
            src: 'prepareJob',
            input: ({ context }) => ({
              settings: context.settings,
              jobSpec: context.jobSpec!,
              runner: context.runner!,
              setup: {
                instanceId: context.identity?.instanceId,
                bootSeconds: context.bootUptimeSeconds,
                readySeconds: Math.max(0, context.now() - context.startedAtMs) / 1000,
                timings: timingsSoFar(context),
                maxRuntimeAtMs: context.startedAtMs + context.settings.maxRuntimeMs,
                hooks: context.jobHooks,
              },
            }),
            onDone: { target: '#agent.withRunner', actions: assign({ jobPrep: ({ event }) => event.output }) },
            onError: { target: '#agent.withRunner', actions: log(({ event }) => `preparing the job failed (the job runs without it): ${errorText(event)}`) },
          },
          after: { prepareDeadline: { target: '#agent.withRunner', description: 'Never holds the job.' } },
        },
      },
    },

    withRunner: {
      description: 'run.sh lives exactly as long as this state: invoked on entry, stopped (everything of the job killed) on exit.',
      invoke: {
        src: 'runnerProcess',
        id: 'runner',
        input: ({ context }) => ({ settings: context.settings, jobSpec: context.jobSpec!, runner: context.runner!, user: context.runnerUser!, hooks: context.jobHooks }),
      },
      initial: 'running',
      states: {
      running: {
        description: 'run.sh as the runner user; its output tells when the job starts and how it ended.',
        type: 'parallel',
        entry: { type: 'enterState', params: { state: 'running' } },
        exit: 'leaveState',
        on: {
          SIGTERM: { target: '#agent.withRunner.draining', actions: 'recordStop', description: 'Stop the job gracefully.' },
          SPOT_INTERRUPTION: { target: '#agent.withRunner.draining', actions: 'recordStop', description: 'Spot notice: stop within two minutes.' },
          TIMEOUT: { target: '#agent.withRunner.draining', actions: 'recordStop', description: 'Max runtime reached: stop the job.' },
          DISK_FULL: { target: '#agent.withRunner.draining', actions: 'recordStop', description: 'Disk full: stop the job.' },
          IDLE_TIMEOUT: { target: '#agent.withRunner.draining', actions: 'recordStop', description: 'No job came: stop the runner.' },
          PANIC: { target: '#agent.withRunner.draining', actions: 'recordPanic', description: 'A crash: stop the runner before reporting.' },
          RUNNER_EXITED: { target: '#agent.withRunner.draining', actions: 'markRunnerExited', description: 'The runner ended by itself.' },
          RUNNER_SPAWNED: { actions: 'markRunnerSpawned' },
          JOB_COMPLETED: { actions: 'markJobCompleted' },
          RUNNER_FATAL: { actions: log(({ event }) => `the runner printed an error line while its job runs: ${event.line}`), description: 'The job runs: only logged.' },
          MEMORY_LOW: { actions: ['countMemoryWarning', log('memory low'), 'noteMemoryLow'], description: "Counted, reported, and told in the job's own log." },
        },
        states: {
          job: {
            initial: 'waitingForJob',
            states: {
              waitingForJob: {
                description: 'Registered; waiting for GitHub to assign the job.',
                on: {
                  RUNNER_LISTENING: { actions: 'markJobListening' },
                  JOB_STARTED: { target: 'jobRunning', actions: ['markJobStarted', 'noteMemoryLow'] },
                  RUNNER_FATAL: {
                    target: '#agent.withRunner.draining',
                    actions: 'recordRunnerFatal',
                    description: 'A refused version, a session conflict, a registration gone: the job will never come.',
                  },
                },
                after: {
                  idleTimeout: {
                    actions: raise({ type: 'IDLE_TIMEOUT' }),
                    description: 'No job in time: the only escape from run.sh restarting forever.',
                  },
                },
              },
              jobRunning: {
                description: 'The job runs.',
                on: { JOB_COMPLETED: { target: 'resultReported', actions: 'markJobCompleted' } },
              },
              resultReported: {
                description: 'The job has its result; run.sh should exit within the runner\'s own 30 s waits.',
                after: {
                  resultExitGrace: {
                    target: '#agent.withRunner.draining',
                    actions: log(({ context }) => `run.sh did not exit within ${context.settings.resultExitGraceMs / 1000} s of the job's result: draining it`),
                    description: 'A hung listener must not hold a finished job until max runtime.',
                  },
                },
              },
            },
          },
          confirmation: {
            description: "The orchestrator's confirmation that the runner came up: `started`, once, when run.sh runs.",
            initial: 'awaitingSpawn',
            states: {
              awaitingSpawn: {
                on: { RUNNER_SPAWNED: { target: 'sending', actions: 'markRunnerSpawned' } },
              },
              sending: retryLoop('startedTelemetry', {
                description: 'The `started` message, retried a few times; the job runs either way.',
                attempt: {
                  src: 'sendTelemetry',
                  input: ({ context }: { context: AgentContext }) => ({
                    queueUrl: queueUrl(context),
                    region: context.identity?.region,
                    message: telemetryMessage(context, 'started'),
                    timeoutMs: TELEMETRY_ATTEMPT_TIMEOUT_MS,
                  }),
                  onDone: { target: '#agent.withRunner.running.confirmation.settled', actions: 'markStartedSent' },
                },
                onGiveUp: { target: '#agent.withRunner.running.confirmation.settled', actions: 'recordTelemetryGiveUp', description: 'Not retriable, or the last attempt.' },
              }),
              settled: { type: 'final' },
            },
          },
        },
      },

      draining: {
        description: 'Stop the runner: SIGTERM to its process group, SIGKILL when the grace is over.',
        entry: { type: 'enterState', params: { state: 'draining' } },
        exit: 'leaveState',
        on: {
          RUNNER_EXITED: { target: '#agent.reporting', actions: 'markRunnerExited', description: 'The runner is gone.' },
          RUNNER_SPAWNED: { actions: 'markRunnerSpawned' },
          JOB_COMPLETED: { actions: 'markJobCompleted' },
          SIGTERM: { description: 'Already draining.' },
          SPOT_INTERRUPTION: { description: 'Already draining.' },
          TIMEOUT: { description: 'Already draining; drainGrace and killWait bound it.' },
          DISK_FULL: { description: 'Already draining.' },
          PANIC: { target: '#agent.reporting', actions: 'recordPanic', description: 'A crash while draining: leaving withRunner kills the runner.' },
        },
        always: { guard: 'runnerGone', target: '#agent.reporting', description: 'The runner already exited by itself.' },
        initial: 'signalling',
        states: {
          signalling: {
            description: 'SIGTERM to run.sh: the runner cancels the job and exits.',
            entry: 'signalRunner',
            after: { drainGrace: { target: 'killing', description: 'RUNS_FLEET_DRAIN_GRACE_SECONDS (capped after a spot notice).' } },
          },
          killing: {
            description: 'SIGKILL to all of the job: its session, its cgroup, its uid.',
            entry: 'killRunner',
            after: {
              killWait: {
                target: '#agent.reporting',
                description: 'Its exit was not seen: abandon it (leaving withRunner kills it again).',
              },
            },
          },
        },
      },
      },
    },

    reporting: {
      description: 'What the job left, its runner logs to S3, the log flush, then the final telemetry message.',
      entry: [
        { type: 'enterState', params: { state: 'reporting' } },
        stopChild('prefetch'),
        'startWatchdogs',
        'noteCacheUpload',
      ],
      exit: 'leaveState',
      on: {
        SIGTERM: { description: 'Already reporting.' },
        SPOT_INTERRUPTION: { description: 'Already reporting.' },
        DISK_FULL: { description: 'Already reporting.' },
      },
      initial: 'inspectingJob',
      states: {
        inspectingJob: {
          description: "Tool-cache markers the job added, the buildx shim's outcome.",
          invoke: {
            src: 'inspectJob',
            input: ({ context }) => ({ settings: context.settings, jobPrep: context.jobPrep, ranJob: context.runnerSpawnedAtMs !== undefined }),
            onDone: { target: 'uploadingRunnerLogs', actions: assign({ jobFacts: ({ event }) => event.output }) },
            onError: 'uploadingRunnerLogs',
          },
          after: { inspectDeadline: 'uploadingRunnerLogs' },
          on: REPORT_ANYWAY,
        },
        uploadingRunnerLogs: {
          description: "The runner's _diag logs to the config's runner_logs_bucket, within 60 s (less after a spot notice).",
          invoke: {
            src: 'uploadRunnerLogs',
            input: ({ context }) => ({
              settings: context.settings,
              jobSpec: context.jobSpec,
              instanceId: context.identity?.instanceId,
              region: context.identity?.region,
              budgetMs: runnerLogsBudgetMs(context),
            }),
            onDone: { target: 'flushingLogs', actions: assign({ logUpload: ({ event }) => event.output }) },
            onError: { target: 'flushingLogs', actions: assign({ logUpload: 'failed' as const }) },
          },
          after: { runnerLogsDeadline: { target: 'flushingLogs', actions: assign({ logUpload: 'failed' as const }) } },
          on: REPORT_ANYWAY,
        },
        flushingLogs: {
          description: "Ship the job's log, and the runner's _diag logs once, before reporting; within the flush deadline.",
          entry: sendTo('logShipper', ({ context }) => ({
            type: 'FLUSH_LOGS' as const,
            timeoutMs: context.settings.logFlushTimeoutMs,
            diagDir: `${context.settings.runnerDir}/_diag`,
          })),
          on: {
            LOGS_FLUSHED: { target: 'sending', actions: 'recordLogCounts' },
            ...REPORT_ANYWAY,
          },
          after: { flushDeadline: { target: 'sending', description: 'A dead logs endpoint cannot hold the report.' } },
        },
        sending: retryLoop('finalTelemetry', {
          description: 'The final message to the termination queue: bounded attempts, all within the report deadline.',
          attempt: {
            src: 'sendTelemetry',
            input: ({ context }: { context: AgentContext }) => ({
              queueUrl: queueUrl(context),
              region: context.identity?.region,
              message: telemetryMessage(context, finalStatus(context).status),
              timeoutMs: TELEMETRY_ATTEMPT_TIMEOUT_MS,
              stateDir: context.settings.stateDir,
            }),
            onDone: { target: '#agent.terminating', actions: 'markFinalSent' },
          },
          onGiveUp: { target: '#agent.terminating', actions: 'recordTelemetryGiveUp', description: 'Not retriable, or the last attempt.' },
          after: { reportDeadline: { target: '#agent.terminating', description: 'RUNS_FLEET_REPORT_TIMEOUT_SECONDS: the queue did not take it in time.' } },
          on: {
            TIMEOUT: { description: 'The report deadline bounds the send.' },
            PANIC: { target: '#agent.terminating', actions: 'countPanic', description: 'A crash while sending goes straight to termination.' },
          },
        }),
      },
    },

    terminating: {
      description: 'Clean up, flush logs, then TerminateInstances on itself — each step with a deadline.',
      exit: 'leaveState',
      entry: { type: 'enterState', params: { state: 'terminating' } },
      on: {
        SIGTERM: {},
        SPOT_INTERRUPTION: {},
        TIMEOUT: {},
        DISK_FULL: {},
        PANIC: { description: 'Termination is already under way.' },
      },
      initial: 'cleaningUp',
      states: {
        cleaningUp: {
          description: "Remove the runner's secrets and work dir; failure never blocks termination. The cache upload ends here at the latest.",
          entry: 'endCacheUpload',
          invoke: { src: 'cleanup', input: ({ context }) => ({ settings: context.settings, user: context.runnerUser }), onDone: 'flushingLogs', onError: 'flushingLogs' },
          after: { cleanupDeadline: 'flushingLogs' },
        },
        flushingLogs: {
          description: 'Ship the last lines (reporting and cleanup), within a short deadline.',
          entry: sendTo('logShipper', ({ context }) => ({ type: 'FLUSH_LOGS' as const, timeoutMs: finalFlushMs(context) })),
          on: { LOGS_FLUSHED: 'deciding' },
          after: { finalFlushDeadline: 'deciding' },
        },
        deciding: {
          description: 'Terminate only when allowed and when the instance id is known.',
          always: [
            { guard: 'terminateDisabled', target: '#agent.finished', description: 'RUNS_FLEET_TERMINATE=false: local use.' },
            {
              guard: 'identityUnknown',
              target: '#agent.finished',
              actions: 'recordTerminationError',
              description: 'Nothing to terminate: exit non-zero so that systemd powers off.',
            },
            { target: 'requestingTermination' },
          ],
        },
        requestingTermination: retryLoop('terminate', {
          description: 'EC2 TerminateInstances on this instance: bounded attempts within the terminate deadline.',
          attempt: {
            src: 'terminateInstance',
            input: ({ context }: { context: AgentContext }) => ({ instanceId: context.identity!.instanceId, region: context.identity!.region }),
            onDone: { target: '#agent.finished', actions: 'markTerminationRequested' },
          },
          onGiveUp: { target: '#agent.finished', actions: 'recordTerminationError' },
          after: { terminateDeadline: { target: '#agent.finished', actions: 'recordTerminationError' } },
        }),
      },
    },

    finished: {
      type: 'final',
      description: "The lifecycle is over; the machine's output is its outcome (bin/main.ts exits with its code).",
    },
  },
});

/** Delay after standby poll number `poll` (0-indexed, as the orchestrator's standbyPollDelay), `throttled` consecutive throttled ones. */
export function standbyPollMs(poll: number, throttled: number, random: () => number = Math.random): number {
  const jitter = 1 + (random() * 2 - 1) * STANDBY_JITTER;
  if (throttled > 0) return Math.min(STANDBY_THROTTLED_MAX_MS, STANDBY_SLOW_POLL_MS * 2 ** throttled) * jitter;
  if (poll < STANDBY_FAST_POLLS) return STANDBY_FAST_POLL_MS;
  return STANDBY_SLOW_POLL_MS * jitter;
}

/** The runner logs' upload budget: 60 s, and after a spot notice no more than what leaves time to report. */
export function runnerLogsBudgetMs(context: AgentContext): number {
  if (context.stop?.reason !== 'spot' || !context.stop.spotTime) return RUNNER_LOGS_BUDGET_MS;
  const left = Date.parse(context.stop.spotTime) - context.now() - SPOT_REPORT_RESERVE_MS;
  return Number.isFinite(left) ? Math.max(0, Math.min(RUNNER_LOGS_BUDGET_MS, left)) : RUNNER_LOGS_BUDGET_MS;
}

/**
 * The longest the lifecycle can take from a SIGTERM during a job to its end, every step at its
 * deadline: the drain, then reporting's steps, then terminating's. The unit's TimeoutStopSec
 * must exceed it with a margin, or systemd kills the agent before it terminated the instance.
 */
export function worstStopPathMs(settings: Settings): number {
  const context = { settings, stop: undefined, now: Date.now } as unknown as AgentContext;
  return (
    drainGraceMs(context) + KILL_WAIT_MS +
    INSPECT_DEADLINE_MS + RUNNER_LOGS_BUDGET_MS + BACKSTOP_MS +
    settings.logFlushTimeoutMs + BACKSTOP_MS +
    settings.reportTimeoutMs +
    CLEANUP_DEADLINE_MS + Math.min(settings.logFlushTimeoutMs, FINAL_FLUSH_MS) + BACKSTOP_MS +
    settings.terminateTimeoutMs
  );
}

/** What the shipped unit (deploy/systemd/runs-fleet-agent.service) allows; test/systemd-unit.test.ts keeps them in step. */
export const UNIT_TIMEOUT_STOP_SEC = 300;
export const UNIT_RUNTIME_MAX_SEC = 380 * 60;

/**
 * Settings that outgrow the shipped unit: systemd would SIGKILL the agent mid-stop (before it
 * reported and terminated) or stop it before the max runtime. Not errors (an operator may have
 * raised the unit's limits with a drop-in); said at start and by check-config.
 */
export function unitBudgetWarnings(settings: Settings): string[] {
  const warnings: string[] = [];
  const worst = Math.ceil(worstStopPathMs(settings) / 1000);
  if (worst > UNIT_TIMEOUT_STOP_SEC) {
    warnings.push(
      `the worst stop path with these deadlines is ${worst} s, more than the unit's TimeoutStopSec=${UNIT_TIMEOUT_STOP_SEC}: ` +
        'raise it in a drop-in, or lower RUNS_FLEET_DRAIN_GRACE_SECONDS / RUNS_FLEET_REPORT_TIMEOUT_SECONDS / RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS / RUNS_FLEET_TERMINATE_TIMEOUT_SECONDS',
    );
  }
  const needed = Math.ceil(settings.maxRuntimeMs / 1000) + Math.max(worst, UNIT_TIMEOUT_STOP_SEC);
  if (needed > UNIT_RUNTIME_MAX_SEC) {
    warnings.push(
      `RUNS_FLEET_MAX_RUNTIME_MINUTES=${settings.maxRuntimeMs / 60_000} plus the stop path needs ${needed} s, more than the unit's RuntimeMaxSec=${UNIT_RUNTIME_MAX_SEC}: ` +
        'systemd would stop the agent before its max runtime; raise RuntimeMaxSec in a drop-in',
    );
  }
  return warnings;
}

/** Deadline of the last log flush in terminating. */
export function finalFlushMs(context: AgentContext): number {
  return Math.min(context.settings.logFlushTimeoutMs, FINAL_FLUSH_MS);
}

/** The drain grace, capped after a spot notice so reporting still happens before AWS acts. */
export function drainGraceMs(context: AgentContext): number {
  const grace = context.settings.drainGraceMs;
  if (context.stop?.reason !== 'spot' || !context.stop.spotTime) return grace;
  const left = Date.parse(context.stop.spotTime) - context.now() - SPOT_RESERVE_MS;
  return Number.isFinite(left) ? Math.max(0, Math.min(grace, left)) : grace;
}
