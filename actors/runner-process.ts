/**
 * running/draining: `run.sh` as the runner user. Its output becomes RUNNER_LISTENING,
 * JOB_STARTED, JOB_COMPLETED, RUNNER_FATAL and finally RUNNER_EXITED. STOP is SIGTERM to its
 * process group (after its notice for the job's log), NOTE a notice alone, KILL is SIGKILL to all of the job; the chart times them (draining.signalling →
 * killing). Stopping the actor (leaving withRunner) kills whatever is left: the runner
 * never outlives draining.
 */
import type { Logger } from 'pino';
import { fromCallback } from 'xstate';
import type { RunnerProcessInput } from '../machines/actor-contracts.js';
import type { AgentEvent, RunnerCommand } from '../machines/events.js';
import { startRunnerProcess, type OnRunnerLine, type RunnerProcessOptions } from '../services/runner/process.js';
import type { SecretVault } from '../services/secrets.js';

export interface RunnerProcessDeps extends Partial<Pick<RunnerProcessOptions, 'env' | 'user' | 'now' | 'outputDrainMs' | 'onSpawn'>> {
  logger: Logger;
  vault: SecretVault;
  /** Every runner output line, redacted: the log shipper and the agent's log hook. */
  onLine: OnRunnerLine;
}

export function runnerProcess(deps: RunnerProcessDeps) {
  return fromCallback<RunnerCommand, RunnerProcessInput, AgentEvent>(({ input, sendBack, receive }) => {
    const runner = startRunnerProcess({ ...deps, ...input, send: sendBack });
    receive((command) => {
      if (command.type === 'STOP') runner.stop(command.notice);
      else if (command.type === 'KILL') runner.kill();
      else if (command.type === 'NOTE') runner.note(command.notice);
    });
    return () => runner.dispose();
  });
}
