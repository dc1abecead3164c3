/**
 * running/draining: `run.sh` as the runner user. Its output becomes RUNNER_LISTENING,
 * JOB_STARTED, JOB_COMPLETED and finally RUNNER_EXITED; STOP {graceMs} drains it
 * (SIGTERM to its process group, SIGKILL after the grace). Stopping the actor kills
 * whatever is left: the runner never outlives draining.
 */
import type { Logger } from 'pino';
import { fromCallback } from 'xstate';
import type { RunnerProcessInput } from '../machines/actor-contracts.js';
import type { AgentEvent, StopRunnerCommand } from '../machines/events.js';
import { startRunnerProcess, type OnRunnerLine, type RunnerProcessOptions } from '../services/runner/process.js';
import type { SecretVault } from '../services/secrets.js';

export interface RunnerProcessDeps extends Partial<Pick<RunnerProcessOptions, 'env' | 'user' | 'now' | 'outputDrainMs' | 'onSpawn'>> {
  logger: Logger;
  vault: SecretVault;
  /** Every runner output line, redacted: the log shipper and the agent's log hook. */
  onLine: OnRunnerLine;
}

export function runnerProcess(deps: RunnerProcessDeps) {
  return fromCallback<StopRunnerCommand, RunnerProcessInput, AgentEvent>(({ input, sendBack, receive }) => {
    const runner = startRunnerProcess({ ...deps, ...input, send: sendBack });
    receive((command) => {
      if (command.type === 'STOP') runner.stop(command.graceMs, performance.now());
    });
    return () => runner.dispose();
  });
}
