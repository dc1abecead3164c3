/**
 * downloading: get the runner (installed → S3 cache → GitHub Releases), verified and
 * extracted, owned by the runner user. Leaving the state aborts `signal`, which aborts
 * the HTTP request and the extraction within a second.
 *
 * The S3 cache upload after a GitHub download runs in the background: the actor
 * resolves without waiting for it and hands it to `onCacheUpload` (e.g. to await at
 * shutdown); it never rejects.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClientFactory } from '../services/aws/clients.js';
import { fromCallback, fromPromise, type AnyEventObject } from 'xstate';
import type { DownloadInput } from '../machines/actor-contracts.js';
import type { AgentEvent } from '../machines/events.js';
import type { InstalledRunner } from '../machines/types.js';
import { describeError } from '../services/errors.js';
import type { Fetch } from '../services/install/github-releases.js';
import type { Logger } from '../services/logs/logger.js';
import type { Owner } from '../services/install/runner-archive.js';
import { acquireRunner } from '../services/install/runner-download.js';
import { DEFAULT_RUNNER_USER, getentPasswd } from '../services/runner/user.js';
import { RunnerCache } from '../services/install/s3-cache.js';
import type { Settings } from '../services/settings.js';

export interface DownloadRunnerDeps {
  logger: Logger;
  s3: ClientFactory<S3Client>;
  fetch?: Fetch;
  /** Receives each background S3 cache upload. */
  onCacheUpload?: (upload: Promise<void>) => void;
  /** The installed tree's owner; default: the runner user when the agent is root, else none (no chown). */
  owner?: (settings: Settings) => Promise<Owner | undefined>;
}

async function acquire(deps: DownloadRunnerDeps, input: DownloadInput, signal: AbortSignal): Promise<InstalledRunner> {
  const { settings, attempt } = input;
  const owner = await (deps.owner ?? runnerUserOwner(deps.logger))(settings);
  const cache = settings.configBucket ? new RunnerCache(await deps.s3(settings.region), settings.configBucket) : undefined;
  const { runner, cacheUpload } = await acquireRunner({ settings, logger: deps.logger, signal, fetch: deps.fetch, cache, owner, attempt });
  if (cacheUpload) deps.onCacheUpload?.(cacheUpload);
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

/** As root: the runner user's uid/gid (`getent passwd`); unknown user → no chown here (registering reports it). */
function runnerUserOwner(logger: Logger) {
  return async (settings: Settings): Promise<Owner | undefined> => {
    if (process.getuid?.() !== 0) return undefined;
    const name = settings.runnerUser ?? DEFAULT_RUNNER_USER;
    const entry = await getentPasswd(name).catch(() => undefined);
    if (!entry) logger.warn({ user: name }, 'runner user not found: the runner files stay owned by root for now');
    return entry ? { uid: entry.uid, gid: entry.gid } : undefined;
  };
}
