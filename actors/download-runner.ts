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
import type { ClientFactory } from '../services/aws-clients.js';
import { fromPromise } from 'xstate';
import type { DownloadInput } from '../machines/actor-contracts.js';
import type { InstalledRunner } from '../machines/types.js';
import type { Fetch } from '../services/github-releases.js';
import type { Logger } from '../services/logger.js';
import type { Owner } from '../services/runner-archive.js';
import { acquireRunner } from '../services/runner-download.js';
import { DEFAULT_RUNNER_USER, getentPasswd } from '../services/runner-user.js';
import { RunnerCache } from '../services/s3-cache.js';
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

export function downloadRunner(deps: DownloadRunnerDeps) {
  return fromPromise<InstalledRunner, DownloadInput>(async ({ input, signal }) => {
    const { settings, attempt } = input;
    const owner = await (deps.owner ?? runnerUserOwner(deps.logger))(settings);
    const cache = settings.configBucket ? new RunnerCache(await deps.s3(settings.region), settings.configBucket) : undefined;
    const { runner, cacheUpload } = await acquireRunner({ settings, logger: deps.logger, signal, fetch: deps.fetch, cache, owner, attempt });
    if (cacheUpload) deps.onCacheUpload?.(cacheUpload);
    return runner;
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
