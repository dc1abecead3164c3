/**
 * The fleet's runner tarball cache in S3 (`RUNS_FLEET_CONFIG_BUCKET`):
 * `runners/{version}/{arch}/actions-runner-linux-{arch}-{version}.tar.gz`, with the
 * tarball's SHA-256 (hex) in the object metadata `sha256` and as S3's own `ChecksumSHA256`.
 *
 * Neither is trusted: anyone who can write the object can write its metadata. An instance
 * installs a cached tarball only against a checksum from elsewhere (runner-download.ts): the
 * operator's pin, the manifest `manifests/runners/{version}.json` that only the operator's
 * `runs-fleet-agent cache-runner` writes (a prefix instance roles can never write), or the
 * release's digest from GitHub. S3's stored checksum lets a mismatch be refused before a byte
 * is extracted.
 *
 * The S3Client is injected (never a module-level client; services/aws/clients.ts makes
 * it path-style when an endpoint override is set, as emulators need). Reads return the object's
 * body as a stream for the one-pass install; writes upload a file the installer kept
 * while it streamed the GitHub download (see runner-download.ts).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { CacheArchive } from '../domain.js';
import type { Readable } from 'node:stream';
import { ChecksumMismatchError, DownloadError, isRetriableAwsError } from '../errors.js';
import { runnerAssetName, type RunnerArch } from './github-releases.js';

/** The S3 commands, loaded on the first call (s3-calls.ts says why). */
const s3Calls = () => import('./s3-calls.js');

export function runnerCacheKey(version: string, arch: RunnerArch): string {
  return `runners/${version}/${arch}/${runnerAssetName(arch, version)}`;
}

export type CacheLookup =
  | { found: true; key: string; body: Readable; sha256: string; size?: number }
  | { found: false; key: string; reason: string };

/** Where the operator's checksums for a version live. */
export function runnerManifestKey(version: string): string {
  return `manifests/runners/${version}.json`;
}

export interface RunnerManifest {
  version: string;
  sha256: Partial<Record<RunnerArch, string>>;
  /** Where cache-runner took the checksums from (the release's digest or body). */
  source?: string;
  written_at?: string;
}

export class S3CacheError extends DownloadError {}

export class RunnerCache {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
  ) {}

  key(version: string, arch: RunnerArch): string {
    return runnerCacheKey(version, arch);
  }

  /** The operator's checksum for this version and arch from the manifest, if there is one. */
  async manifestChecksum(version: string, arch: RunnerArch, signal?: AbortSignal): Promise<string | undefined> {
    const key = runnerManifestKey(version);
    let text: string;
    try {
      const { getObject } = await s3Calls();
      const output = await this.client.send(getObject({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
      text = (await output.Body?.transformToString('utf8')) ?? '';
    } catch (error) {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404) return undefined;
      throw new S3CacheError(`S3 cache manifest s3://${this.bucket}/${key} could not be read: ${e?.name ?? 'Error'}`, { cause: error, retriable: isRetriableAwsError(error) });
    }
    try {
      const manifest = JSON.parse(text.slice(0, 64 * 1024)) as RunnerManifest;
      const hex = manifest?.version === version ? manifest.sha256?.[arch]?.toLowerCase() : undefined;
      return hex && /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
    } catch {
      return undefined;
    }
  }

  /** Write the manifest (cache-runner only: never an instance). */
  async writeManifest(manifest: RunnerManifest): Promise<string> {
    const key = runnerManifestKey(manifest.version);
    const { putObject } = await s3Calls();
    await this.client.send(
      putObject({ Bucket: this.bucket, Key: key, Body: `${JSON.stringify(manifest, null, 2)}\n`, ContentType: 'application/json' }),
    );
    return key;
  }

  /**
   * The cached tarball as a stream, or why there is none. Throws S3CacheError on S3 failures;
   * with `trusted`, a ChecksumMismatchError before reading a byte when S3's stored checksum differs.
   */
  async open(version: string, arch: RunnerArch, signal?: AbortSignal, trusted?: string): Promise<CacheLookup> {
    const key = this.key(version, arch);
    let output;
    try {
      const { getObject } = await s3Calls();
      output = await this.client.send(getObject({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }), { abortSignal: signal });
    } catch (error) {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      // A missing key is a miss; a missing bucket (also a 404) is a misconfiguration, reported as a failure.
      if (e?.name === 'NoSuchKey' || (e?.$metadata?.httpStatusCode === 404 && e?.name !== 'NoSuchBucket')) {
        return { found: false, key, reason: `s3://${this.bucket}/${key} does not exist` };
      }
      throw new S3CacheError(`S3 cache s3://${this.bucket}/${key} could not be read: ${e?.name ?? 'Error'}: ${(error as Error)?.message}`, {
        cause: error,
        retriable: isRetriableAwsError(error),
      });
    }
    const body = output.Body as Readable | undefined;
    if (!body) return { found: false, key, reason: `s3://${this.bucket}/${key} has no body` };
    body.on?.('error', () => {}); // an abort before the install's pipeline takes it is not an uncaught exception
    // Checksum first: S3's checksum of the whole object (not a multipart composite, `…-N`).
    const stored = output.ChecksumSHA256 && !output.ChecksumSHA256.includes('-') ? Buffer.from(output.ChecksumSHA256, 'base64').toString('hex') : undefined;
    if (trusted && stored && stored !== trusted) {
      body.destroy();
      throw new ChecksumMismatchError(
        `checksum mismatch for s3://${this.bucket}/${key}: S3 holds sha256 ${stored}, the trusted checksum is ${trusted}; not a byte was extracted`,
      );
    }
    const sha256 = trusted ?? output.Metadata?.sha256?.trim().toLowerCase() ?? '';
    return { found: true, key, body, sha256, size: output.ContentLength };
  }

  /** Upload a verified tarball with its checksum as metadata; S3 checks the bytes against it too. */
  async store(file: string, entry: { version: string; arch: RunnerArch; sha256: string }, signal?: AbortSignal): Promise<string> {
    const key = this.key(entry.version, entry.arch);
    const { size } = await stat(file);
    try {
      const { putObject } = await s3Calls();
      await this.client.send(
        putObject({
          Bucket: this.bucket,
          Key: key,
          Body: createReadStream(file),
          ContentLength: size,
          ContentType: 'application/gzip',
          Metadata: { sha256: entry.sha256 },
          ChecksumSHA256: Buffer.from(entry.sha256, 'hex').toString('base64'),
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      throw new S3CacheError(`S3 cache upload to s3://${this.bucket}/${key} failed: ${(error as Error)?.message}`, {
        cause: error,
        retriable: isRetriableAwsError(error),
      });
    }
    return key;
  }
}

/**
 * One upload of a kept archive to the cache, removing the file whatever happens. Never rejects:
 * the outcome is logged and returned. Its lifetime is the caller's `signal` (the chart's
 * cacheUpload child, stopped at cleanup at the latest).
 */
export async function uploadToCache(
  cache: Pick<RunnerCache, 'store' | 'bucket'>,
  archive: CacheArchive,
  log: Pick<Logger, 'info' | 'warn'>,
  signal?: AbortSignal,
): Promise<'uploaded' | 'failed'> {
  const started = performance.now();
  try {
    const key = await cache.store(archive.file, archive, signal);
    log.info({ bucket: cache.bucket, key, bytes: archive.bytes, seconds: Math.round((performance.now() - started) / 10) / 100 }, 'runner tarball uploaded to the S3 cache');
    return 'uploaded';
  } catch (error) {
    log.warn({ err: (error as Error)?.message ?? String(error), bucket: cache.bucket, aborted: Boolean(signal?.aborted) }, 'S3 cache upload failed (best effort)');
    return 'failed';
  } finally {
    await rm(archive.file, { force: true }).catch(() => undefined);
  }
}
