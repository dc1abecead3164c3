/**
 * downloading: get the runner (installed → S3 cache → GitHub Releases), verified and
 * extracted, owned by the runner user. Leaving the state aborts `signal`, which aborts
 * the HTTP request and the extraction within a second.
 *
 * A GitHub download kept for the S3 cache (RUNS_FLEET_CACHE_UPLOAD=true) comes back as
 * `runner.cacheArchive`; the chart's cacheUpload child (uploadRunnerCache below) uploads it.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClientFactory } from '../services/aws/clients.js';
import { fromCallback, fromPromise, type AnyEventObject } from 'xstate';
import type { CacheUploadInput, DownloadInput } from '../machines/actor-contracts.js';
import type { AgentEvent } from '../machines/events.js';
import type { InstalledRunner } from '../machines/types.js';
import { describeError } from '../services/errors.js';
import type { Fetch } from '../services/install/github-releases.js';
import type { Logger } from '../services/logs/logger.js';
import type { Owner } from '../services/install/runner-archive.js';
import { acquireRunner } from '../services/install/runner-download.js';
import { RunnerCache, uploadToCache } from '../services/install/s3-cache.js';
import type { Settings } from '../services/settings.js';

export interface DownloadRunnerDeps {
  logger: Logger;
  s3: ClientFactory<S3Client>;
  fetch?: Fetch;
  /**
   * The installed tree's owner; default none: the tree stays root's until registering, which
   * resolved the runner user, gives it to them (services/runner/user.ts prepareRunnerDir).
   */
  owner?: (settings: Settings) => Promise<Owner | undefined>;
}

async function acquire(deps: DownloadRunnerDeps, input: DownloadInput, signal: AbortSignal): Promise<InstalledRunner> {
  const { settings, attempt } = input;
  const owner = deps.owner ? await deps.owner(settings) : undefined;
  const cache = settings.configBucket ? new RunnerCache(await deps.s3(settings.region), settings.configBucket) : undefined;
  const { runner } = await acquireRunner({ settings, logger: deps.logger, signal, fetch: deps.fetch, cache, owner, attempt });
  return runner;
}

export function downloadRunner(deps: DownloadRunnerDeps) {
  return fromPromise<InstalledRunner, DownloadInput>(({ input, signal }) => acquire(deps, input, signal));
}

/**
 * The same download, started while standby waits for the config: a child that reports
 * RUNNER_PREFETCHED or PREFETCH_FAILED. Stopping it (standby ended, a boot failure) aborts it.
 */
export function prefetchRunner(deps: DownloadRunnerDeps) {
  return fromCallback<AnyEventObject, DownloadInput, AgentEvent>(({ input, sendBack }) => {
    const controller = new AbortController();
    deps.logger.info({ version: input.settings.runnerVersion }, 'prefetching the runner while waiting for the config');
    acquire(deps, input, controller.signal).then(
      (runner) => {
        if (!controller.signal.aborted) sendBack({ type: 'RUNNER_PREFETCHED', runner });
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        const e = error as { retriable?: boolean; retryAfterMs?: number };
        sendBack({ type: 'PREFETCH_FAILED', failure: { message: describeError(error), retriable: Boolean(e?.retriable), retryAfterMs: e?.retryAfterMs } });
      },
    );
    return () => controller.abort();
  });
}

/**
 * The chart's cacheUpload child: the kept archive to the S3 cache, then the file removed. It
 * lives from the end of downloading until cleanup at the latest (stopping it aborts the upload);
 * it reports CACHE_UPLOAD_FINISHED with the outcome and never fails the lifecycle.
 */
export function uploadRunnerCache(deps: { logger: Logger; s3: ClientFactory<S3Client> }) {
  return fromCallback<AnyEventObject, CacheUploadInput, AgentEvent>(({ input, sendBack }) => {
    const controller = new AbortController();
    const log = deps.logger.child({ component: 'cache-upload' });
    void (async () => {
      const bucket = input.settings.configBucket;
      if (!bucket) return 'failed' as const;
      const cache = new RunnerCache(await deps.s3(input.settings.region), bucket);
      return uploadToCache(cache, input.archive, log, controller.signal);
    })().then(
      (outcome) => {
        if (!controller.signal.aborted) sendBack({ type: 'CACHE_UPLOAD_FINISHED', outcome });
      },
      () => {
        if (!controller.signal.aborted) sendBack({ type: 'CACHE_UPLOAD_FINISHED', outcome: 'failed' });
      },
    );
    return () => controller.abort();
  });
}
