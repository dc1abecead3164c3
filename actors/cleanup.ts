import { fromPromise } from 'xstate';
import type { CleanupInput } from '../machines/actor-contracts.js';
import { cleanupRunner } from '../services/runner/cleanup.js';
import type { Logger } from '../services/logs/logger.js';

/**
 * Remove the runner's secrets, work dir and the agent's state; failures are logged, never thrown.
 * The vault keeps its values: redaction must go on for every line logged after this.
 */
export function cleanup(deps: { logger: Logger }) {
  return fromPromise<void, CleanupInput>(async ({ input }) => {
    const errors = await cleanupRunner(input.settings.runnerDir, input.settings.stateDir, input.user);
    if (errors.length > 0) deps.logger.warn({ errors }, 'cleanup incomplete');
    else deps.logger.info({ runner_dir: input.settings.runnerDir }, 'cleanup done');
  });
}
