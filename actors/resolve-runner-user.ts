/**
 * registering, first: who the job runs as (RUNS_FLEET_RUNNER_USER, `getent passwd`, setpriv),
 * resolved once and carried in context to every step that needs it (IMDS isolation,
 * registration and its hooks, run.sh, cleanup).
 */
import { fromPromise } from 'xstate';
import type { RunnerUserInput } from '../machines/actor-contracts.js';
import type { Logger } from '../services/logs/logger.js';
import { resolveRunnerUser as resolve, type RunnerUser, type RunnerUserDeps } from '../services/runner/user.js';

export function resolveRunnerUser(deps: { logger: Logger; user?: RunnerUserDeps }) {
  return fromPromise<RunnerUser, RunnerUserInput>(async ({ input }) => {
    const user = await resolve(input.settings, deps.user);
    deps.logger.info({ user: user.name, uid: user.uid, switchUser: user.switchUser, setpriv: user.setpriv !== undefined }, 'runner user resolved');
    return user;
  });
}
