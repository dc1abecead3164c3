/**
 * registering, last step: what the job needs around run.sh that the runner does not do —
 * the buildx cache shim's variables in the runner's `.env` (when the config enabled it), and
 * a snapshot of the tool cache, for reporting to name what the job installed.
 */
import { fromPromise } from 'xstate';
import type { PrepareJobInput } from '../machines/actor-contracts.js';
import type { JobPrep } from '../machines/types.js';
import { writeBuildkitCacheEnv } from '../services/runner/buildkit-cache.js';
import { describeError } from '../services/errors.js';
import type { Logger } from '../services/logs/logger.js';
import { snapshotToolCache, toolCacheDir } from '../services/runner/tool-cache.js';

export function prepareJob(deps: { logger: Logger; env?: Readonly<Record<string, string | undefined>> }) {
  return fromPromise<JobPrep, PrepareJobInput>(async ({ input }) => {
    const prep: JobPrep = {};
    const cache = input.jobSpec.buildkitCache;
    if (cache) {
      try {
        prep.buildkitOutcomeFile = await writeBuildkitCacheEnv(input.runner.dir, cache);
        deps.logger.info({ bucket: cache.bucket }, "buildx layer cache: variables written to the runner's .env");
      } catch (error) {
        deps.logger.warn({ err: describeError(error) }, "buildx layer cache: the runner's .env could not be written (the job runs without it)");
      }
    }
    const dir = toolCacheDir(deps.env ?? process.env);
    try {
      const snapshot = await snapshotToolCache(dir);
      prep.toolCacheBefore = snapshot.entries;
      if (snapshot.truncated) deps.logger.warn({ dir }, 'tool cache snapshot cut short: too many entries');
    } catch (error) {
      deps.logger.info({ dir, err: describeError(error) }, 'no tool cache snapshot (tool_cache_misses will not be reported)');
    }
    return prep;
  });
}
