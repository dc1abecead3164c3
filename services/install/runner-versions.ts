/**
 * Which runner release is the newest one this instance can see — for `check-config`'s warning
 * that a pinned `RUNS_FLEET_RUNNER_VERSION` is behind (GitHub refuses runners below a minimum
 * version on announced dates: runner-and-aws-facts.md). One look each, no retry: the caller
 * bounds it, and offline is an answer ("could not tell"), never an error.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { resolveRelease, runnerArch, type Fetch } from './github-releases.js';

const VERSION = /^(\d+)\.(\d+)\.(\d+)$/;

/** Compare two `x.y.z` versions (negative when a < b); non-versions sort first. */
export function compareVersions(a: string, b: string): number {
  const pa = VERSION.exec(a)?.slice(1).map(Number);
  const pb = VERSION.exec(b)?.slice(1).map(Number);
  if (!pa || !pb) return (pa ? 1 : 0) - (pb ? 1 : 0);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/** The newest `runners/{version}/` prefix in the S3 cache bucket (one ListObjectsV2 page). */
export async function newestCachedVersion(s3: S3Client, bucket: string, signal?: AbortSignal): Promise<string | undefined> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'runners/', Delimiter: '/', MaxKeys: 1000 }), { abortSignal: signal });
  const versions = (out.CommonPrefixes ?? [])
    .map((p) => p.Prefix?.slice('runners/'.length).replace(/\/$/, '') ?? '')
    .filter((v) => VERSION.test(v));
  return versions.sort(compareVersions).at(-1);
}

/** GitHub's latest release of actions/runner. */
export async function newestGithubVersion(apiUrl: string, signal?: AbortSignal, fetchImpl?: Fetch): Promise<string> {
  return (await resolveRelease({ apiUrl, version: 'latest', arch: runnerArch(), signal, fetch: fetchImpl })).version;
}

export interface PinCheck {
  /** A warning for the operator, when the pin is behind what was seen. */
  warning?: string;
  /** What was looked at, and what could not be (offline): for the operator, not an error. */
  notes: string[];
}

/**
 * Whether the pinned version is behind the newest one visible: the S3 cache's listing when a
 * bucket is configured, else (or when the listing fails) GitHub's latest release.
 */
export async function checkRunnerPin(options: {
  pinned: string;
  cachedVersion?: () => Promise<string | undefined>;
  githubVersion: () => Promise<string>;
}): Promise<PinCheck> {
  const notes: string[] = [];
  if (options.pinned === 'latest') return { notes: ['RUNS_FLEET_RUNNER_VERSION is "latest": nothing pinned to check'] };
  let newest: { version: string; where: string } | undefined;
  if (options.cachedVersion) {
    try {
      const version = await options.cachedVersion();
      if (version) newest = { version, where: 'the S3 cache' };
      else notes.push('the S3 cache lists no runner version');
    } catch (error) {
      notes.push(`the S3 cache could not be listed: ${(error as Error).message}`);
    }
  }
  if (!newest) {
    try {
      newest = { version: await options.githubVersion(), where: "GitHub's latest release" };
    } catch (error) {
      notes.push(`GitHub's latest release could not be read: ${(error as Error).message}`);
    }
  }
  if (!newest) return { notes: [...notes, 'could not tell whether the pinned runner version is current (offline?)'] };
  notes.push(`newest runner version seen: ${newest.version} (${newest.where})`);
  if (compareVersions(options.pinned, newest.version) >= 0) return { notes };
  return {
    notes,
    warning:
      `RUNS_FLEET_RUNNER_VERSION=${options.pinned} is below ${newest.version}, the newest in ${newest.where}: ` +
      'GitHub refuses runner versions below a minimum on announced dates, and a refused runner never gets its job. Update the pin (and the AMI)',
  };
}
