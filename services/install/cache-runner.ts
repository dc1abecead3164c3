/**
 * `runs-fleet-agent cache-runner`: the operator fills the fleet's runner cache, where GitHub is
 * reachable and with credentials that can write the bucket (never an instance's). For each
 * architecture it resolves the release, downloads the tarball, verifies it against the
 * release's checksum (the asset digest, else the release notes), uploads it to
 * `runners/{version}/{arch}/…` with S3's own SHA-256, and then writes the manifest
 * `manifests/runners/{version}.json`: the checksums instances trust the cache with, from a
 * prefix their role can never write.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ChecksumMismatchError } from '../errors.js';
import { openDownload, resolveRelease, type Fetch, type RunnerArch } from './github-releases.js';
import type { RunnerCache, RunnerManifest } from './s3-cache.js';

export interface CacheRunnerOptions {
  cache: RunnerCache;
  githubApiUrl: string;
  /** `latest` or a version. */
  version: string;
  arches: RunnerArch[];
  fetch?: Fetch;
  log?: (message: string) => void;
}

export async function cacheRunner(options: CacheRunnerOptions): Promise<RunnerManifest> {
  const log = options.log ?? (() => {});
  const sha256: Partial<Record<RunnerArch, string>> = {};
  let version = options.version.replace(/^v/, '');
  const sources: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'runs-fleet-cache-runner-'));
  try {
    for (const arch of options.arches) {
      const release = await resolveRelease({ apiUrl: options.githubApiUrl, version, arch, fetch: options.fetch });
      version = release.version;
      const file = join(dir, release.assetName);
      const hash = createHash('sha256');
      const download = await openDownload(release.url, { fetch: options.fetch });
      await pipeline(
        download.body,
        new Transform({
          transform(chunk: Buffer, _e, callback) {
            hash.update(chunk);
            callback(null, chunk);
          },
        }),
        createWriteStream(file),
      );
      const actual = hash.digest('hex');
      if (actual !== release.sha256) {
        throw new ChecksumMismatchError(`${release.assetName} from GitHub has sha256 ${actual}, the release says ${release.sha256}: not cached`);
      }
      const key = await options.cache.store(file, { version, arch, sha256: actual });
      log(`cached s3://${options.cache.bucket}/${key} (sha256 ${actual}, checked against the release's ${release.checksumSource})`);
      sha256[arch] = actual;
      sources.push(`${arch}: GitHub ${release.checksumSource}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const manifest: RunnerManifest = { version, sha256, source: sources.join(', '), written_at: new Date().toISOString() };
  const key = await options.cache.writeManifest(manifest);
  log(`wrote the manifest s3://${options.cache.bucket}/${key}: instances trust the cache for ${version} with it`);
  return manifest;
}
