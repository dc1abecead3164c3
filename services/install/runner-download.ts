/**
 * Get the actions/runner into the runner dir, cheapest source first (SPEC §1 downloading):
 *
 * 1. installed — the dir already holds the wanted version (baked into the AMI, or an
 *    earlier install's `.runner-version`): no network at all for a pinned version; one
 *    API call for `latest` (to learn which version that is);
 * 2. S3 cache — `RUNS_FLEET_CONFIG_BUCKET`, verified against a checksum the cache cannot
 *    supply itself (an instance that can write the bucket could write its metadata too):
 *    `RUNS_FLEET_RUNNER_SHA256`, else the operator's manifest (`cache-runner`), else the
 *    release's GitHub digest (one API call). A pinned version with a pin or a manifest needs
 *    zero GitHub requests. A failure, a miss or a mismatch falls back to GitHub, logged;
 * 3. GitHub Releases — checksum from the asset digest or the release notes (mandatory), and
 *    the pin's when there is one.
 *
 * Bytes are verified and extracted in one pass (runner-archive.ts), then the tree on disk is
 * checked (tree-check.ts). With `RUNS_FLEET_CACHE_UPLOAD=true`, the same pass writes the
 * compressed bytes beside the runner dir; once the checksum matched, that file is uploaded to
 * the S3 cache in the background: `cacheUpload` is returned unawaited (it never rejects and
 * removes the file when done); whoever owns the process may await it at shutdown.
 *
 * Progress: one log line every 5 s while bytes flow (bytes, total, rate, ETA), and one
 * line at the end with the source and the time spent per source. A download that
 * receives nothing for `stallTimeoutMs` is aborted as a retriable failure.
 */
import type { CacheArchive, InstalledRunner } from '../domain.js';
import { ensureFreeSpaceForDownload } from '../disk.js';
import { AgentError, ChecksumMismatchError, DownloadError } from '../errors.js';
import {
  bodyFailure,
  openDownload,
  resolveRelease,
  runnerArch,
  type Fetch,
  type RunnerArch,
  type RunnerRelease,
} from './github-releases.js';
import type { Logger } from '../logs/logger.js';
import { installArchive, installedRunnerVersion, removeLeftovers, type Extractor, type InstalledArchive, type Owner } from './runner-archive.js';
import { RunnerCache, S3CacheError } from './s3-cache.js';
import type { Settings } from '../settings.js';

export { installedRunnerVersion, VERSION_MARKER } from './runner-archive.js';
export { runnerArch } from './github-releases.js';

export const PROGRESS_INTERVAL_MS = 5_000;
export const STALL_TIMEOUT_MS = 60_000;

export type DownloadSettings = Pick<Settings, 'runnerDir' | 'runnerVersion' | 'githubApiUrl' | 'configBucket' | 'downloadMinFreeMb'> &
  Partial<Pick<Settings, 'runnerSha256' | 'cacheUpload'>>;

export interface AcquireRunnerOptions {
  settings: DownloadSettings;
  logger: Logger;
  signal?: AbortSignal;
  fetch?: Fetch;
  /** The S3 cache; undefined = no cache (no `RUNS_FLEET_CONFIG_BUCKET`). */
  cache?: RunnerCache;
  /** The runner user: the installed tree is chowned to it. */
  owner?: Owner;
  /** Default: from `process.arch`. */
  arch?: RunnerArch;
  /** Default: GNU tar when present, else node-tar. */
  extractor?: Extractor;
  /** The machine's attempt number, for the logs. */
  attempt?: number;
  progressIntervalMs?: number;
  stallTimeoutMs?: number;
}

export type SourceTimings = Partial<Record<'installed_check' | 'github_api' | 's3' | 'github_download' | 'total', number>>;

export interface AcquiredRunner {
  runner: InstalledRunner;
  /** Seconds spent per source (and in total). */
  timings: SourceTimings;
}

export async function acquireRunner(options: AcquireRunnerOptions): Promise<AcquiredRunner> {
  const { settings, logger, signal } = options;
  const log = logger.child({ component: 'download' });
  const started = performance.now();
  const timings: SourceTimings = {};
  const clock = (key: keyof SourceTimings, since: number) => {
    timings[key] = round((timings[key] ?? 0) + (performance.now() - since) / 1000);
  };
  const arch = options.arch ?? runnerArch();
  const dir = settings.runnerDir;
  const pinned = settings.runnerVersion.replace(/^v/, '') === 'latest' ? undefined : settings.runnerVersion.replace(/^v/, '');
  const done = (runner: InstalledRunner, extra: Record<string, unknown> = {}): AcquiredRunner => {
    clock('total', started);
    const { cacheArchive: _, ...shown } = runner;
    log.info({ source: shown.source, version: shown.version, dir, secondsBySource: timings, ...extra }, `runner ${runner.version} ready from ${runner.source}`);
    return { runner, timings };
  };

  log.info({ attempt: options.attempt, wanted: pinned ?? 'latest', arch, dir }, 'acquiring the actions runner');
  let t = performance.now();
  const installed = await installedRunnerVersion(dir);
  clock('installed_check', t);
  if (pinned && installed === pinned) return done({ dir, version: pinned, source: 'installed' });

  let release: RunnerRelease | undefined;
  if (!pinned) {
    t = performance.now();
    try {
      release = await resolveRelease({ apiUrl: settings.githubApiUrl, version: 'latest', arch, signal, fetch: options.fetch });
    } finally {
      clock('github_api', t);
    }
    if (installed === release.version) return done({ dir, version: installed, source: 'installed' });
  }
  const version = pinned ?? release!.version;
  if (installed) log.info({ installed, wanted: version }, `runner ${installed} is installed but ${version} is wanted: replacing it`);

  const space = await ensureFreeSpaceForDownload(dir, settings.downloadMinFreeMb);
  log.debug({ freeMb: space.freeMb, path: space.path }, 'disk space checked');
  await removeLeftovers(dir);

  const pinned256 = settings.runnerSha256?.[arch];
  if (options.cache) {
    t = performance.now();
    try {
      // The cache is trusted only against a checksum from elsewhere: the pin, the operator's
      // manifest, else the release's digest from GitHub (one API call).
      let trusted: { sha256: string; source: string } | undefined = pinned256 ? { sha256: pinned256, source: 'RUNS_FLEET_RUNNER_SHA256' } : undefined;
      if (!trusted) {
        const fromManifest = await options.cache.manifestChecksum(version, arch, signal);
        if (fromManifest) trusted = { sha256: fromManifest, source: 'manifest' };
      }
      if (!trusted) {
        const t2 = performance.now();
        try {
          release ??= await resolveRelease({ apiUrl: settings.githubApiUrl, version, arch, signal, fetch: options.fetch });
        } finally {
          clock('github_api', t2);
        }
        trusted = { sha256: release.sha256, source: `GitHub ${release.checksumSource}` };
      }
      const fromCache = await installFromCache(options, options.cache, version, arch, log, trusted.sha256);
      clock('s3', t);
      if (fromCache) return done({ dir, version, source: 's3' }, { ...summary(fromCache, timings.s3), checksumSource: trusted.source });
    } catch (error) {
      clock('s3', t);
      if (signal?.aborted) throw abortError(signal, error);
      log.warn({ err: describe(error), bucket: options.cache.bucket }, 'S3 cache unavailable or refused: falling back to GitHub');
    }
  }

  t = performance.now();
  try {
    release ??= await resolveRelease({ apiUrl: settings.githubApiUrl, version, arch, signal, fetch: options.fetch });
  } finally {
    clock('github_api', t);
  }
  if (pinned256 && pinned256 !== release.sha256) {
    throw new ChecksumMismatchError(
      `the runner ${version} release on GitHub has sha256 ${release.sha256}, but RUNS_FLEET_RUNNER_SHA256 pins ${pinned256}: not installed`,
    );
  }
  t = performance.now();
  const fromGitHub = await withProgress(options, log, 'github', async (signal, progress) => {
    const download = await openDownload(release.url, { signal, fetch: options.fetch });
    progress.total = download.size ?? release.size;
    return installArchive({
      body: download.body,
      expectedSha256: release.sha256,
      runnerDir: dir,
      version,
      origin: `GitHub ${release.url}`,
      signal,
      extractor: options.extractor,
      owner: options.owner,
      keepArchive: options.cache !== undefined && settings.cacheUpload === true,
      onBytes: (bytes) => progress.update(bytes),
      sourceError: (error) => bodyFailure(release.url, error, signal, 'runner download'),
    });
  }).finally(() => clock('github_download', t));

  const cacheArchive = options.cache && settings.cacheUpload ? keptForCache(fromGitHub, { version, arch }, log) : undefined;
  return done(
    { dir, version, source: 'github', ...(cacheArchive ? { cacheArchive } : {}) },
    { ...summary(fromGitHub, timings.github_download), checksumSource: release.checksumSource },
  );
}

async function installFromCache(
  options: AcquireRunnerOptions,
  cache: RunnerCache,
  version: string,
  arch: RunnerArch,
  log: Logger,
  trusted: string,
): Promise<InstalledArchive | undefined> {
  return withProgress(options, log, 's3', async (signal, progress) => {
    const lookup = await cache.open(version, arch, signal, trusted);
    if (!lookup.found) {
      log.info({ key: lookup.key, bucket: cache.bucket }, `S3 cache miss: ${lookup.reason}`);
      return undefined;
    }
    progress.total = lookup.size;
    const origin = `s3://${cache.bucket}/${lookup.key}`;
    return installArchive({
      body: lookup.body,
      expectedSha256: lookup.sha256,
      runnerDir: options.settings.runnerDir,
      version,
      origin,
      signal,
      extractor: options.extractor,
      owner: options.owner,
      onBytes: (bytes) => progress.update(bytes),
      sourceError: (error) => new S3CacheError(`reading ${origin} failed: ${(error as Error)?.message ?? error}`, { cause: error }),
    });
  });
}

/** The kept archive, for the chart's cacheUpload child (services/install/s3-cache.ts uploadToCache). */
function keptForCache(installed: InstalledArchive, entry: { version: string; arch: RunnerArch }, log: Logger): CacheArchive | undefined {
  if (!installed.keptArchive) {
    log.warn({ err: describe(installed.keepError) }, 'the downloaded archive could not be kept: no S3 cache upload');
    return undefined;
  }
  return { file: installed.keptArchive, ...entry, sha256: installed.sha256, bytes: installed.bytes };
}

class Progress {
  total?: number;
  private bytes = 0;
  private readonly started = performance.now();
  private lastByteAt = performance.now();
  private lastLogAt = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly source: 'github' | 's3',
    private readonly intervalMs: number,
    private readonly stallMs: number,
    private readonly onStall: (error: DownloadError) => void,
  ) {
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(1_000, intervalMs, stallMs / 2)));
    this.timer.unref();
  }

  update(bytes: number) {
    this.bytes = bytes;
    this.lastByteAt = performance.now();
  }

  stop() {
    clearInterval(this.timer);
  }

  private tick() {
    const now = performance.now();
    if (now - this.lastByteAt >= this.stallMs) {
      this.stop();
      this.onStall(
        new DownloadError(`runner download from ${this.source} stalled: no data for ${this.stallMs / 1000} s after ${this.bytes} bytes`, {
          retriable: true,
        }),
      );
      return;
    }
    if (now - this.lastLogAt < this.intervalMs) return;
    this.lastLogAt = now;
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? this.bytes / seconds : 0;
    const total = this.total;
    this.log.info(
      {
        source: this.source,
        bytes: this.bytes,
        totalBytes: total ?? null,
        percent: total ? round((100 * this.bytes) / total) : null,
        rateMBps: round(rate / 1e6),
        etaSeconds: total && rate > 0 ? round(Math.max(0, total - this.bytes) / rate) : null,
      },
      'runner download progress',
    );
  }
}

/** Run one source's transfer with progress logs and stall detection under a signal derived from the caller's. */
async function withProgress<T>(
  options: AcquireRunnerOptions,
  log: Logger,
  source: 'github' | 's3',
  work: (signal: AbortSignal, progress: Progress) => Promise<T>,
): Promise<T> {
  const stall = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stall.signal]) : stall.signal;
  const progress = new Progress(
    log,
    source,
    options.progressIntervalMs ?? PROGRESS_INTERVAL_MS,
    options.stallTimeoutMs ?? STALL_TIMEOUT_MS,
    (error) => stall.abort(error),
  );
  try {
    return await work(signal, progress);
  } catch (error) {
    if (options.signal?.aborted) throw abortError(options.signal, error);
    throw error;
  } finally {
    progress.stop();
  }
}

function abortError(signal: AbortSignal, cause: unknown): DownloadError {
  if (cause instanceof DownloadError && !cause.retriable && /aborted/.test(cause.message)) return cause;
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? '');
  return new DownloadError(`runner download aborted${reason ? `: ${reason}` : ''}`, { cause, retriable: false });
}

function summary(installed: InstalledArchive, seconds: number | undefined): Record<string, unknown> {
  return {
    bytes: installed.bytes,
    entries: installed.entries,
    extractor: installed.extractor,
    rateMBps: seconds ? round(installed.bytes / seconds / 1e6) : undefined,
    sha256: installed.sha256,
  };
}

function describe(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  if (error instanceof AgentError || error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

const round = (n: number) => Math.round(n * 100) / 100;
