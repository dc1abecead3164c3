/**
 * Pure decisions about how a lifecycle ended: the final status, the telemetry
 * message, the exit code. No I/O here; the machine and the CLI both call these.
 */
import { constants } from 'node:os';
import type { TelemetryMessage } from '../services/domain.js';
import type { AgentContext, AgentOutcome, FinalStatus, InterruptedBy, TelemetryStatus } from './types.js';

export type { TelemetryMessage } from '../services/domain.js';

const osSignals = constants.signals;

const INTERRUPTIONS: Record<string, InterruptedBy | undefined> = {
  sigterm: 'sigterm',
  spot: 'spot',
  disk_full: 'disk_full',
};

/**
 * The final status and error. Operational, as the orchestrator counts it (pkg/termination
 * `jobResult`): `success` = the runner served the job to its end, whatever the workflow's
 * result (that goes in `job_result`); `failure` = our side failed (crash, runner crash,
 * disk full). The stop's reason wins over the `Canceled` the runner prints while being stopped.
 */
export function finalStatus(ctx: AgentContext): { status: FinalStatus; error?: string; interruptedBy?: InterruptedBy } {
  const failure = ctx.failure;
  // Without a (usable) config nothing ran, and bootstrap_failed is the only status the orchestrator
  // takes without a job_id: it finds the job by instance and requeues it.
  if (!ctx.jobSpec) return { status: 'bootstrap_failed', error: failure?.message ?? ctx.stop?.detail ?? 'no runner config was read' };
  if (failure?.phase === 'panic') return { status: 'failure', error: failure.message };
  if (ctx.stop) {
    const interruptedBy = INTERRUPTIONS[ctx.stop.reason];
    switch (ctx.stop.reason) {
      case 'idle':
        return { status: 'bootstrap_failed', error: ctx.stop.detail };
      case 'timeout':
        return { status: 'timeout', error: ctx.stop.detail };
      case 'disk_full':
        return { status: 'failure', error: ctx.stop.detail, interruptedBy };
      default:
        return { status: 'interrupted', error: failure?.message ?? ctx.stop.detail, interruptedBy };
    }
  }
  if (failure && failure.phase !== 'runner') return { status: 'bootstrap_failed', error: failure.message };
  if (ctx.job.result !== undefined) return { status: 'success' };
  if (ctx.job.startedAt !== undefined) {
    return { status: 'failure', error: failure?.message ?? describeExit(ctx, 'the runner exited before reporting the job result') };
  }
  return { status: 'bootstrap_failed', error: failure?.message ?? describeExit(ctx, 'the runner exited before taking a job') };
}

function describeExit(ctx: AgentContext, what: string): string {
  const exit = ctx.runnerExit;
  if (!exit) return what;
  return `${what} (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`})`;
}

const seconds = (ms: number) => Math.round(ms / 10) / 100;
/** Go's encoding/json wants an int: whole seconds, truncated like the orchestrator's agent (`int(d.Seconds())`). */
const wholeSeconds = (ms: number) => Math.max(0, Math.floor(ms / 1000));
/** Bootstrap segments are Go float64 with omitempty: a zero is left out, as "not measured". */
const segment = (ms: number | undefined) => (ms === undefined || !Number.isFinite(ms) || ms <= 0 ? undefined : Math.round(ms) / 1000);

/** Timings so far, including the time spent in the current state. */
export function timingsSoFar(ctx: AgentContext): Record<string, number> {
  const timings: Record<string, number> = { ...ctx.timings };
  if (ctx.current) {
    timings[ctx.current.state] = seconds((timings[ctx.current.state] ?? 0) * 1000 + Math.max(0, ctx.now() - ctx.current.enteredAtMs));
  }
  if (ctx.prefetchMs !== undefined) timings.prefetch = seconds(Math.max(0, ctx.prefetchMs));
  return timings;
}

/**
 * `bootstrap_*_seconds` as the orchestrator's agent defines them (cmd/agent/main.go): boot =
 * /proc/uptime when the agent started; config = waiting for and reading the config; runner =
 * getting the runner once the config was there (what a prefetch did not already do); register =
 * registration; total = config found → run.sh started.
 */
function bootstrapSegments(ctx: AgentContext): Partial<TelemetryMessage> {
  const total = ctx.runnerSpawnedAtMs !== undefined && ctx.configFoundAtMs !== undefined ? ctx.runnerSpawnedAtMs - ctx.configFoundAtMs : undefined;
  const fields: Partial<TelemetryMessage> = {
    bootstrap_boot_seconds: ctx.bootUptimeSeconds !== undefined ? segment(ctx.bootUptimeSeconds * 1000) : undefined,
    bootstrap_config_seconds: ctx.configFoundAtMs !== undefined ? segment(ctx.configFoundAtMs - ctx.startedAtMs) : undefined,
    bootstrap_runner_seconds: segment((ctx.timings.downloading ?? 0) * 1000),
    bootstrap_register_seconds: segment((ctx.timings.registering ?? 0) * 1000),
    bootstrap_total_seconds: segment(total),
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** The exit code as a shell reports it: the code, or 128 + the signal's number. */
function exitCode(ctx: AgentContext): number | null {
  const exit = ctx.runnerExit;
  if (!exit) return null;
  if (exit.exitCode !== null) return exit.exitCode;
  const number = exit.signal ? osSignals[exit.signal as keyof typeof osSignals] : undefined;
  return number !== undefined ? 128 + number : null;
}

export function telemetryMessage(ctx: AgentContext, status: TelemetryStatus): TelemetryMessage {
  const nowMs = ctx.now();
  const final = status === 'started' ? undefined : finalStatus(ctx);
  // From run.sh's start (what the orchestrator's `started` confirms), else the agent's.
  const startedAtMs = ctx.runnerSpawnedAtMs ?? ctx.startedAtMs;
  const message: TelemetryMessage = {
    instance_id: ctx.identity?.instanceId ?? ctx.settings.instanceId ?? null,
    job_id: ctx.jobSpec?.jobId ?? null,
    run_id: ctx.jobSpec?.runId ?? null,
    status,
    exit_code: final ? exitCode(ctx) : null,
    duration_seconds: wholeSeconds(nowMs - startedAtMs),
    started_at: new Date(startedAtMs).toISOString(),
    completed_at: final ? new Date(Math.max(nowMs, startedAtMs)).toISOString() : null,
    error: final?.error ?? null,
    interrupted_by: final?.interruptedBy ?? null,
    timings: timingsSoFar(ctx),
    memory_warnings: ctx.memoryWarnings,
  };
  if (status === 'started') return { ...message, ...bootstrapSegments(ctx) };
  if (ctx.job.result !== undefined) message.job_result = ctx.job.result;
  if (ctx.logUpload !== undefined) message.log_upload = ctx.logUpload;
  else if (ctx.jobSpec && !ctx.jobSpec.runnerLogs) message.log_upload = 'disabled';
  if (ctx.jobFacts?.toolCacheMisses !== undefined) message.tool_cache_misses = ctx.jobFacts.toolCacheMisses;
  if (ctx.jobFacts?.buildCacheInterception !== undefined) message.build_cache_interception = ctx.jobFacts.buildCacheInterception;
  if (ctx.logs) {
    message.log_lines_shipped = ctx.logs.shipped;
    message.log_lines_dropped = ctx.logs.dropped;
  }
  return message;
}

/** The queue telemetry goes to: the variable wins over the SSM config (or what an unusable config named). */
export function queueUrl(ctx: AgentContext): string | undefined {
  return ctx.settings.terminationQueueUrl ?? ctx.jobSpec?.queueUrl ?? ctx.salvagedQueueUrl;
}

export function agentOutcome(ctx: AgentContext): AgentOutcome {
  if (ctx.standbyEnd) {
    return {
      status: 'no_job',
      standbyEnd: ctx.standbyEnd.reason,
      terminationRequested: false,
      terminateEnabled: ctx.settings.terminate,
      exitCode: ctx.standbyEnd.reason === 'panic' ? 1 : 0,
    };
  }
  const { status, error, interruptedBy } = finalStatus(ctx);
  const finished = ctx.termination.requested || (!ctx.settings.terminate && ctx.termination.error === undefined);
  return {
    status,
    error,
    interruptedBy,
    terminationRequested: ctx.termination.requested,
    terminationError: ctx.termination.error,
    terminateEnabled: ctx.settings.terminate,
    exitCode: finished ? 0 : 1,
  };
}

/** `HH:MM:SSZ` of a wall-clock time, as the job's log shows times. */
const clockTime = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)}Z`;

/**
 * Why the agent stopped the job, for the job's own log (an `::error` annotation): what the
 * developer sees in GitHub instead of a bare "The operation was canceled". None for idle: no job ran.
 */
export function stopNotice(ctx: Pick<AgentContext, 'stop'>): string | undefined {
  const stop = ctx.stop;
  if (!stop) return undefined;
  const at = clockTime(stop.atMs);
  switch (stop.reason) {
    case 'spot':
      return `spot interruption notice at ${at}: the instance is being reclaimed${stop.spotTime ? ` (AWS acts at ${stop.spotTime})` : ''}`;
    case 'timeout':
      return `${stop.detail} at ${at}`; // "max runtime of N minutes reached"
    case 'disk_full':
      return `${stop.detail} (at ${at})`;
    case 'sigterm':
      return `the instance was told to stop at ${at} (${stop.detail}): the job was cancelled by the infrastructure, not by a step`;
    default:
      return undefined;
  }
}

/** A low-memory warning for the job's own log (a `::warning` annotation). */
export function memoryNotice(atMs: number, availableMb: number, minAvailableMb: number): string {
  return `low memory at ${clockTime(atMs)}: ${availableMb} MB available, below the ${minAvailableMb} MB minimum (RUNS_FLEET_MEM_MIN_AVAILABLE_MB)`;
}

/** The error for a runner version GitHub refuses (exit code 7, or the server's deprecation line). */
export function deprecatedRunnerError(version: string | undefined, line?: string): string {
  return (
    `runner ${version ?? '(unknown version)'} is deprecated: GitHub refuses it${line ? ` ("${line}")` : ' (run.sh exit code 7)'}. ` +
    'Update the runner baked into the AMI, or RUNS_FLEET_RUNNER_VERSION if it is pinned'
  );
}

/** The error for a line after which the runner will never get its job. */
export function runnerFatalError(reason: string, line: string, version: string | undefined): string {
  if (reason === 'deprecated') return deprecatedRunnerError(version, line);
  return `the runner will never get its job: "${line}"`;
}
