/**
 * reporting, first step: what the finished job left that the orchestrator counts — the
 * tool-cache entries it installed on demand (`tool_cache_misses`, only when both snapshots
 * worked: a missing baseline would call every baked tool a miss) and the buildx shim's
 * outcome (`build_cache_interception`).
 */
import { fromPromise } from 'xstate';
import type { InspectJobInput } from '../machines/actor-contracts.js';
import type { JobFacts } from '../machines/types.js';
import { readBuildCacheOutcome } from '../services/runner/buildkit-cache.js';
import type { Logger } from '../services/logs/logger.js';
import { snapshotToolCache, toolCacheDir, toolCacheMisses } from '../services/runner/tool-cache.js';

export function inspectJob(deps: { logger: Logger; env?: Readonly<Record<string, string | undefined>> }) {
  return fromPromise<JobFacts, InspectJobInput>(async ({ input }) => {
    if (!input.ranJob) return {};
    const facts: JobFacts = {};
    const before = input.jobPrep?.toolCacheBefore;
    if (before) {
      const after = await snapshotToolCache(toolCacheDir(deps.env ?? process.env)).catch(() => undefined);
      if (after) facts.toolCacheMisses = toolCacheMisses(before, after.entries);
    }
    if (input.jobPrep?.buildkitOutcomeFile) facts.buildCacheInterception = await readBuildCacheOutcome(input.jobPrep.buildkitOutcomeFile);
    if (facts.toolCacheMisses?.length) deps.logger.info({ tool_cache_misses: facts.toolCacheMisses }, 'the job installed tools on demand');
    return facts;
  });
}
