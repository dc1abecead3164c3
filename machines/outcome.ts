/**
 * Pure decisions about how a lifecycle ended: the final status, the telemetry
 * message, the exit code. No I/O here; the machine and the CLI both call these.
 */
import type { AgentContext, AgentOutcome, FinalStatus, InterruptedBy, TelemetryStatus } from './types.js';

const INTERRUPTIONS: Record<string, InterruptedBy | undefined> = {
  sigterm: 'sigterm',
  spot: 'spot',
  disk_full: 'disk_full',
};

/** The final status and error. The stop's reason wins over the result the runner printed while being stopped. */
export function finalStatus(ctx: AgentContext): { status: FinalStatus; error?: string; interruptedBy?: InterruptedBy } {
  const failure = ctx.failure;
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
        return { status: 'interrupted', error: failure?.message, interruptedBy };
    }
  }
  if (failure && failure.phase !== 'runner') return { status: 'bootstrap_failed', error: failure.message };
  if (ctx.job.result !== undefined) {
    const ok = ctx.job.result === 'Succeeded' || ctx.job.result === 'SucceededWithIssues';
    return ok ? { status: 'success' } : { status: 'failure', error: `job ${ctx.job.name ?? ''} completed with result: ${ctx.job.result}` };
  }
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
  timings: Record<string, number>;
  memory_warnings: number;
  log_lines_shipped?: number;
  log_lines_dropped?: number;
  /** The job's own identity from the job hooks (added by the telemetry actor when they ran). */
  github?: { run_id?: string; run_attempt?: string; job?: string; repository?: string; workflow?: string };
}

const seconds = (ms: number) => Math.round(ms / 10) / 100;

/** Timings so far, including the time spent in the current state. */
export function timingsSoFar(ctx: AgentContext): Record<string, number> {
  const timings: Record<string, number> = { ...ctx.timings };
  if (ctx.current) {
    timings[ctx.current.state] = seconds((timings[ctx.current.state] ?? 0) * 1000 + ctx.now() - ctx.current.enteredAtMs);
  }
  return timings;
}

export function telemetryMessage(ctx: AgentContext, status: TelemetryStatus): TelemetryMessage {
  const nowMs = ctx.now();
  const final = status === 'started' ? undefined : finalStatus(ctx);
  const startedAtMs = ctx.job.startedAt ? Date.parse(ctx.job.startedAt) : ctx.startedAtMs;
  return {
    instance_id: ctx.identity?.instanceId ?? ctx.settings.instanceId ?? null,
    job_id: ctx.jobSpec?.jobId ?? null,
    run_id: ctx.jobSpec?.runId ?? null,
    status,
    exit_code: final ? (ctx.runnerExit?.exitCode ?? null) : null,
    duration_seconds: seconds(Math.max(0, nowMs - startedAtMs)),
    started_at: new Date(startedAtMs).toISOString(),
    completed_at: final ? new Date(nowMs).toISOString() : null,
    error: final?.error ?? null,
    interrupted_by: final?.interruptedBy ?? null,
    timings: timingsSoFar(ctx),
    memory_warnings: ctx.memoryWarnings,
    ...(final && ctx.logs ? { log_lines_shipped: ctx.logs.shipped, log_lines_dropped: ctx.logs.dropped } : {}),
  };
}

/** The queue telemetry goes to: the variable wins over the SSM config. */
export function queueUrl(ctx: AgentContext): string | undefined {
  return ctx.settings.terminationQueueUrl ?? ctx.jobSpec?.queueUrl;
}

export function agentOutcome(ctx: AgentContext): AgentOutcome {
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
