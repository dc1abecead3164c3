/**
 * The fleet's runner tarball cache in S3 (`RUNS_FLEET_CONFIG_BUCKET`):
 * `runners/{version}/{arch}/actions-runner-linux-{arch}-{version}.tar.gz`, with the
 * tarball's SHA-256 (hex) in the object metadata `sha256`.
 *
 * The S3Client is injected (never a module-level client; services/aws-clients.ts makes
 * it path-style when an endpoint override is set, as emulators need). Reads return the object's
 * body as a stream for the one-pass install; writes upload a file the installer kept
 * while it streamed the GitHub download (see runner-download.ts).
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DownloadError, isRetriableAwsError } from './errors.js';
import { runnerAssetName, type RunnerArch } from './github-releases.js';

export function runnerCacheKey(version: string, arch: RunnerArch): string {
  return `runners/${version}/${arch}/${runnerAssetName(arch, version)}`;
}

export type CacheLookup =
  | { found: true; key: string; body: Readable; sha256: string; size?: number }
  | { found: false; key: string; reason: string };

export class S3CacheError extends DownloadError {}

export class RunnerCache {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
  ) {}

  key(version: string, arch: RunnerArch): string {
    return runnerCacheKey(version, arch);
  }

  /** The cached tarball as a stream, or why there is none. Throws S3CacheError on S3 failures. */
  async open(version: string, arch: RunnerArch, signal?: AbortSignal): Promise<CacheLookup> {
    const key = this.key(version, arch);
    let output;
    try {
      output = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
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
    const sha256 = output.Metadata?.sha256?.trim().toLowerCase();
    if (!body) return { found: false, key, reason: `s3://${this.bucket}/${key} has no body` };
    body.on?.('error', () => {}); // an abort before the install's pipeline takes it is not an uncaught exception
    if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256)) {
      body.destroy();
      return { found: false, key, reason: `s3://${this.bucket}/${key} has no valid sha256 metadata` };
    }
    return { found: true, key, body, sha256, size: output.ContentLength };
  }

  /** Upload a verified tarball with its checksum as metadata; S3 checks the bytes against it too. */
  async store(file: string, entry: { version: string; arch: RunnerArch; sha256: string }, signal?: AbortSignal): Promise<string> {
    const key = this.key(entry.version, entry.arch);
    const { size } = await stat(file);
    try {
      await this.client.send(
        new PutObjectCommand({
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
