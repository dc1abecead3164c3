/**
 * The runs-fleet agent as one explicit state machine (SPEC §1):
 *
 *   booting → downloading → registering → running → draining → reporting → terminating
 *
 * Every side effect is an actor named by string (see actor-contracts.ts); every
 * stop (SIGTERM, spot notice, max runtime, idle, full disk) and crash is an event.
 * Pure decisions (final status, telemetry message) live in outcome.ts.
 */
import { assign, enqueueActions, log, raise, setup, spawnChild, stopChild } from 'xstate';
import { parseSettings } from '../services/settings.js';
import { actorContracts } from './actor-contracts.js';
import { STOP_EVENTS, type AgentEvent, type StopReason } from './events.js';
import type { WatchdogInput } from './actor-contracts.js';
import { finalStatus, queueUrl, telemetryMessage } from './outcome.js';
import type { AgentContext, AgentInput, FailurePhase, StateName } from './types.js';

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

const errorText = (event: unknown): string => {
  const error = (event as { error?: unknown }).error;
  return error instanceof Error ? error.message : String(error);
};
const isRetriable = (event: unknown): boolean =>
  Boolean(((event as { error?: { retriable?: boolean } }).error as { retriable?: boolean } | undefined)?.retriable);

const STOP_DETAILS: Record<StopReason, (event: AgentEvent, ctx: AgentContext) => string> = {
  sigterm: (e) => `agent received ${(e as { signal?: string }).signal ?? 'SIGTERM'}`,
  spot: (e) => `spot interruption notice: ${(e as { action?: string }).action} at ${(e as { time?: string }).time}`,
  timeout: (_, ctx) => `max runtime of ${ctx.settings.maxRuntimeMs / 60_000} minutes reached`,
  idle: (_, ctx) => `no job started within the idle timeout of ${ctx.settings.idleTimeoutMs / 60_000} minutes`,
  disk_full: (e) =>
    `disk full: ${(e as { freeMb?: number }).freeMb} MB free on the runner's filesystem, below the minimum of ${(e as { minFreeMb?: number }).minFreeMb} MB`,
};

export const agentMachine = setup({
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
  },
  delays: {
    /** Hard ceiling from agent start (RUNS_FLEET_MAX_RUNTIME_MINUTES). */
    maxRuntime: ({ context }) => Math.max(0, context.startedAtMs + context.settings.maxRuntimeMs - context.now()),
    /** Registered but no job started (RUNS_FLEET_IDLE_TIMEOUT_MINUTES). */
    idleTimeout: ({ context }) => context.settings.idleTimeoutMs,
    /**
     * Between download attempts: what GitHub asked for (Retry-After / x-ratelimit-reset, capped),
     * else capped exponential backoff with jitter: ~1 s, ~2 s, ≤ 8 s.
     */
    downloadBackoff: ({ context }) =>
      context.retryAfterMs !== undefined
        ? Math.min(context.retryAfterMs, MAX_RETRY_AFTER_MS)
        : Math.min(8_000, 1_000 * 2 ** (context.downloadAttempt - 1)) * (0.5 + Math.random() / 2),
    /** Graceful stop + SIGKILL + reaping; after this the runner is abandoned (and killed on exit). */
    drainDeadline: ({ context }) => drainGraceMs(context) + KILL_WAIT_MS,
    /** Telemetry may not hold the instance longer than this (RUNS_FLEET_REPORT_TIMEOUT_SECONDS). */
    reportDeadline: ({ context }) => context.settings.reportTimeoutMs,
    cleanupDeadline: CLEANUP_DEADLINE_MS,
    /** The last flush only carries the agent's closing lines: the job's log was flushed in reporting. */
    finalFlushDeadline: ({ context }) => finalFlushMs(context) + BACKSTOP_MS,
    /**
     * Backstop of the log flush: the flush itself stops at RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS and
     * reports what it dropped; this fires only if it does not return within a second after that.
     */
    flushDeadline: ({ context }) => context.settings.logFlushTimeoutMs + BACKSTOP_MS,
    /** TerminateInstances with its retries (RUNS_FLEET_TERMINATE_TIMEOUT_SECONDS). */
    terminateDeadline: ({ context }) => context.settings.terminateTimeoutMs,
  },
  actions: {
    enterState: assign(({ context }, params: { state: StateName }) => ({
      current: { state: params.state, enteredAtMs: context.now() },
    })),
    leaveState: assign(({ context }) => {
      if (!context.current) return {};
      const { state, enteredAtMs } = context.current;
      const spent = (context.now() - enteredAtMs) / 1000;
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
    recordSettingErrors: assign(({ context }) => ({
      failure: context.failure ?? { phase: 'config' as const, message: `invalid configuration: ${context.settingErrors.join('; ')}` },
    })),
    recordPanic: assign(({ context, event }) => ({
      panics: context.panics + 1,
      failure: { phase: 'panic' as const, message: `agent crashed: ${(event as { error?: string }).error}` },
    })),
    countPanic: assign(({ context }) => ({ panics: context.panics + 1 })),
    countMemoryWarning: assign(({ context }) => ({ memoryWarnings: context.memoryWarnings + 1 })),
    countDownloadAttempt: assign(({ context, event }) => ({
      downloadAttempt: context.downloadAttempt + 1,
      retryAfterMs: (event as { error?: { retryAfterMs?: number } }).error?.retryAfterMs,
    })),
    startWatchdogs: enqueueActions(({ context, enqueue }) => {
      const input: WatchdogInput = { settings: context.settings, identity: context.identity, jobSpec: context.jobSpec };
      enqueue.spawnChild('logShipper', { id: 'logShipper', input });
      enqueue.spawnChild('spotWatcher', { id: 'spotWatcher', input });
      enqueue.spawnChild('resourceMonitor', { id: 'resourceMonitor', input });
    }),
    markJobListening: assign(({ context }) => ({ job: { ...context.job, listening: true } })),
    markJobStarted: assign(({ context, event }) =>
      event.type === 'JOB_STARTED' ? { job: { ...context.job, name: event.jobName, startedAt: event.at } } : {},
    ),
    markJobCompleted: assign(({ context, event }) =>
      event.type === 'JOB_COMPLETED' ? { job: { ...context.job, name: event.jobName, result: event.result } } : {},
    ),
    markRunnerExited: assign(({ event }) =>
      event.type === 'RUNNER_EXITED' ? { runnerExit: { exitCode: event.exitCode, signal: event.signal } } : {},
    ),
    markStartedSent: assign(({ context, event }) => ({
      telemetry: { ...context.telemetry, startedSent: Boolean((event as { output?: { sent?: boolean } }).output?.sent) },
    })),
    markFinalSent: assign(({ context }) => ({ telemetry: { ...context.telemetry, finalSent: true } })),
    markTerminationRequested: assign(({ context }) => ({ termination: { ...context.termination, requested: true } })),
    recordTerminationError: assign(({ context, event }) => ({
      termination: { ...context.termination, error: context.identity ? errorText(event) : 'instance id unknown' },
    })),
    stopRunner: enqueueActions(({ context, enqueue }) => {
      if (!context.runnerExit) enqueue.sendTo('runner', { type: 'STOP', graceMs: drainGraceMs(context) });
    }),
  },
}).createMachine({
  id: 'agent',
  description: 'One ephemeral GitHub Actions job on one EC2 instance, from boot to self-termination.',
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
    };
  },
  invoke: { src: 'processWatcher', id: 'processWatcher' },
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
  },
  initial: 'booting',
  states: {
    booting: {
      description: 'Read the environment, learn identity, read (and delete) the runner config from SSM.',
      entry: { type: 'enterState', params: { state: 'booting' } },
      exit: ['leaveState', 'startWatchdogs'],
      initial: 'identity',
      states: {
        identity: {
          description: 'Instance id and region: from the environment, else IMDSv2.',
          invoke: {
            src: 'resolveIdentity',
            input: ({ context }) => ({ settings: context.settings }),
            onDone: {
              target: 'runnerConfig',
              // From here on every actor's settings carry the resolved instance id and region.
              actions: assign({
                identity: ({ event }) => event.output,
                settings: ({ context, event }) => ({ ...context.settings, instanceId: event.output.instanceId, region: event.output.region }),
              }),
            },
            onError: { target: '#agent.reporting', actions: { type: 'recordFailure', params: { phase: 'config' } } },
          },
        },
        runnerConfig: {
          description: 'Read the SecureString runner config, validate it, delete it.',
          invoke: {
            src: 'readRunnerConfig',
            input: ({ context }) => ({ settings: context.settings, identity: context.identity! }),
            onDone: { target: 'validated', actions: assign({ jobSpec: ({ event }) => event.output }) },
            onError: { target: '#agent.reporting', actions: { type: 'recordFailure', params: { phase: 'config' } } },
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

    downloading: {
      description: 'Get the runner: installed, S3 cache or GitHub Releases; verified and extracted.',
      entry: { type: 'enterState', params: { state: 'downloading' } },
      exit: 'leaveState',
      initial: 'attempt',
      states: {
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
      description: "Prepare the runner's identity: JIT needs nothing; a registration token runs config.sh.",
      entry: { type: 'enterState', params: { state: 'registering' } },
      exit: 'leaveState',
      invoke: {
        src: 'registerRunner',
        input: ({ context }) => ({ settings: context.settings, jobSpec: context.jobSpec!, runner: context.runner! }),
        onDone: { target: 'running' },
        onError: { target: 'reporting', actions: { type: 'recordFailure', params: { phase: 'registration' } } },
      },
    },

    running: {
      description: 'run.sh as the runner user; its output tells when the job starts and how it ended.',
      entry: [
        { type: 'enterState', params: { state: 'running' } },
        spawnChild('runnerProcess', {
          id: 'runner',
          input: ({ context }) => ({ settings: context.settings, jobSpec: context.jobSpec!, runner: context.runner! }),
        }),
      ],
      exit: 'leaveState',
      on: {
        SIGTERM: { target: 'draining', actions: 'recordStop', description: 'Stop the job gracefully.' },
        SPOT_INTERRUPTION: { target: 'draining', actions: 'recordStop', description: 'Spot notice: stop within two minutes.' },
        TIMEOUT: { target: 'draining', actions: 'recordStop', description: 'Max runtime reached: stop the job.' },
        DISK_FULL: { target: 'draining', actions: 'recordStop', description: 'Disk full: stop the job.' },
        IDLE_TIMEOUT: { target: 'draining', actions: 'recordStop', description: 'No job came: stop the runner.' },
        PANIC: { target: 'draining', actions: 'recordPanic', description: 'A crash: stop the runner before reporting.' },
        RUNNER_EXITED: { target: 'draining', actions: 'markRunnerExited', description: 'The runner ended by itself.' },
        JOB_COMPLETED: { actions: 'markJobCompleted' },
      },
      initial: 'waitingForJob',
      states: {
        waitingForJob: {
          description: 'Registered; waiting for GitHub to assign the job.',
          on: {
            RUNNER_LISTENING: { actions: 'markJobListening' },
            JOB_STARTED: { target: 'jobRunning', actions: 'markJobStarted' },
          },
          after: {
            idleTimeout: {
              actions: raise({ type: 'IDLE_TIMEOUT' }),
              description: 'No job in time: the only escape from run.sh restarting forever.',
            },
          },
        },
        jobRunning: {
          description: 'The job runs; the started message goes out once.',
          invoke: {
            src: 'sendTelemetry',
            input: ({ context }) => ({
              queueUrl: queueUrl(context),
              region: context.identity?.region,
              message: telemetryMessage(context, 'started'),
            }),
            onDone: { actions: 'markStartedSent' },
          },
        },
      },
    },

    draining: {
      description: 'Stop the runner: SIGTERM to its process group, SIGKILL after the grace period.',
      entry: [{ type: 'enterState', params: { state: 'draining' } }],
      exit: ['leaveState', stopChild('runner')],
      on: {
        RUNNER_EXITED: { target: 'reporting', actions: 'markRunnerExited', description: 'The runner is gone.' },
        JOB_COMPLETED: { actions: 'markJobCompleted' },
        SIGTERM: { description: 'Already draining.' },
        SPOT_INTERRUPTION: { description: 'Already draining.' },
        TIMEOUT: { description: 'Already draining; the drain deadline bounds it.' },
        DISK_FULL: { description: 'Already draining.' },
        PANIC: { target: 'reporting', actions: 'recordPanic', description: 'A crash while draining: the runner is killed on exit.' },
      },
      always: { guard: 'runnerGone', target: 'reporting', description: 'The runner already exited by itself.' },
      initial: 'stopping',
      states: {
        stopping: {
          entry: 'stopRunner',
          after: {
            drainDeadline: {
              target: '#agent.reporting',
              description: 'The runner did not go away: abandon it (killed when draining exits).',
            },
          },
        },
      },
    },

    reporting: {
      description: 'Flush the logs (so the message can count what was lost), then send the final telemetry message.',
      entry: { type: 'enterState', params: { state: 'reporting' } },
      exit: 'leaveState',
      on: {
        SIGTERM: { description: 'Already reporting.' },
        SPOT_INTERRUPTION: { description: 'Already reporting.' },
        DISK_FULL: { description: 'Already reporting.' },
      },
      initial: 'flushingLogs',
      states: {
        flushingLogs: {
          description: "Ship the job's log before reporting, within the flush deadline.",
          invoke: {
            src: 'flushLogs',
            input: ({ context }) => ({ timeoutMs: context.settings.logFlushTimeoutMs }),
            onDone: { target: 'sending', actions: assign({ logs: ({ event }) => event.output }) },
            onError: 'sending',
          },
          after: { flushDeadline: { target: 'sending', description: 'A dead logs endpoint cannot hold the report.' } },
          on: {
            TIMEOUT: { target: 'sending', description: 'Out of time: skip the flush, the report matters more.' },
            PANIC: { target: 'sending', actions: 'countPanic', description: 'A crash while flushing: report anyway.' },
          },
        },
        sending: {
          description: 'The final message to the termination queue (bounded retries and time).',
          invoke: {
            src: 'sendTelemetry',
            input: ({ context }) => ({
              queueUrl: queueUrl(context),
              region: context.identity?.region,
              message: telemetryMessage(context, finalStatus(context).status),
            }),
            onDone: { target: '#agent.terminating', actions: 'markFinalSent' },
            onError: { target: '#agent.terminating' },
          },
          after: { reportDeadline: { target: '#agent.terminating', description: 'The queue did not answer in time.' } },
          on: {
            TIMEOUT: { description: 'The report deadline bounds the send.' },
            PANIC: { target: '#agent.terminating', actions: 'countPanic', description: 'A crash while sending goes straight to termination.' },
          },
        },
      },
    },

    terminating: {
      description: 'Clean up, flush logs, then TerminateInstances on itself — each step with a deadline.',
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
          description: "Remove the runner's secrets and work dir; failure never blocks termination.",
          invoke: { src: 'cleanup', input: ({ context }) => ({ settings: context.settings }), onDone: 'flushingLogs', onError: 'flushingLogs' },
          after: { cleanupDeadline: 'flushingLogs' },
        },
        flushingLogs: {
          description: 'Ship the last lines (reporting and cleanup), within a short deadline.',
          invoke: {
            src: 'flushLogs',
            input: ({ context }) => ({ timeoutMs: finalFlushMs(context) }),
            onDone: 'deciding',
            onError: 'deciding',
          },
          after: { finalFlushDeadline: 'deciding' },
        },
        deciding: {
          description: 'Terminate only when allowed and when the instance id is known.',
          always: [
            { guard: 'terminateDisabled', target: 'done', description: 'RUNS_FLEET_TERMINATE=false: local use.' },
            {
              guard: 'identityUnknown',
              target: 'done',
              actions: 'recordTerminationError',
              description: 'Nothing to terminate: exit non-zero so that systemd powers off.',
            },
            { target: 'requestingTermination' },
          ],
        },
        requestingTermination: {
          description: 'EC2 TerminateInstances on this instance.',
          invoke: {
            src: 'terminateInstance',
            input: ({ context }) => ({ instanceId: context.identity!.instanceId, region: context.identity!.region }),
            onDone: { target: 'done', actions: 'markTerminationRequested' },
            onError: { target: 'done', actions: 'recordTerminationError' },
          },
          after: { terminateDeadline: { target: 'done', actions: 'recordTerminationError' } },
        },
        done: {
          type: 'final',
          entry: 'leaveState',
        },
      },
    },
  },
});

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
