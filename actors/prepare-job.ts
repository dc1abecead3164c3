/**
 * registering, last step: what the job needs around run.sh that the runner does not do —
 * the buildx cache shim's variables in the runner's `.env` (when the config enabled it), a
 * snapshot of the tool cache, for reporting to name what the job installed, and what the job's
 * own log says about the machine: `.setup_info` ("Set up job") and the started hook's notice.
 */
import { fromPromise } from 'xstate';
import type { PrepareJobInput } from '../machines/actor-contracts.js';
import type { JobPrep } from '../machines/types.js';
import { writeBuildkitCacheEnv } from '../services/runner/buildkit-cache.js';
import { describeError } from '../services/errors.js';
import type { Logger } from '../services/logs/logger.js';
import { snapshotToolCache, toolCacheDir } from '../services/runner/tool-cache.js';
import type { MetadataClient } from '../services/aws/identity.js';
import { writeNotice } from '../services/runner/job-hooks.js';
import { readInstanceFacts, setupInfo, startedNotice, writeSetupInfo } from '../services/runner/setup-info.js';

export interface PrepareJobDeps {
  logger: Logger;
  env?: Readonly<Record<string, string | undefined>>;
  /** IMDS, for the instance's facts in `.setup_info` (missing ones are left out). */
  imds?: () => MetadataClient;
  agentVersion: string;
}

export function prepareJob(deps: PrepareJobDeps) {
  return fromPromise<JobPrep, PrepareJobInput>(async ({ input }) => {
    const prep: JobPrep = {};
    const machine = describeMachine(deps, input); // IMDS answers while the rest is done
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
    await machine;
    return prep;
  });
}

/** `.setup_info` in the runner root, and the notice the started hook prints. Never fails the job. */
async function describeMachine(deps: PrepareJobDeps, input: PrepareJobInput): Promise<void> {
  const { settings, runner, setup } = input;
  const instance = deps.imds ? await readInstanceFacts(deps.imds(), { instanceId: setup.instanceId }) : { instanceId: setup.instanceId };
  try {
    const entries = setupInfo(instance, { agentVersion: deps.agentVersion, runner, bootSeconds: setup.bootSeconds, readySeconds: setup.readySeconds, timings: setup.timings });
    await writeSetupInfo(runner.dir, entries);
    deps.logger.info({ fields: entries.flatMap((e) => e.detail.split('\n').map((l) => l.split(':')[0])) }, 'the job log\'s "Set up job" step gets .setup_info');
  } catch (error) {
    deps.logger.warn({ err: describeError(error) }, '.setup_info could not be written (the job runs without it)');
  }
  if (!setup.hooks) return;
  try {
    writeNotice(setup.hooks.startedNotice, startedNotice(instance, { maxRuntimeMinutes: settings.maxRuntimeMs / 60_000, maxRuntimeAtMs: setup.maxRuntimeAtMs, diskMinFreeMb: settings.diskMinFreeMb }));
  } catch (error) {
    deps.logger.warn({ err: describeError(error) }, "the started hook's notice could not be written");
  }
}
